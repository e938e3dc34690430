<?php
// An example backend for Herald, run with `php -S 127.0.0.1:9000 examples/backend.php`: RPCs at /rpc
// (calc.double, calc.fail, calc.slow) and lifecycle webhooks at /hooks.
//
// Environment: HERALD_BACKEND_SECRET (the [[rpc]] / [[webhook]] secret); HERALD_WEBHOOK_LOG, when
// set, gets each webhook event as one JSON line.

declare(strict_types=1);

require __DIR__ . '/../tests/bootstrap.php';

use Herald\Backend;
use Herald\RpcError;
use Herald\Signature;

$secret = (string) getenv('HERALD_BACKEND_SECRET');
$body = (string) file_get_contents('php://input');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: application/json');

if ($path === '/rpc') {
    [$status, $answer] = Backend::answerRpc($secret, $body, Signature::fromRequest(), function (string $method, mixed $data, string $user, string $conn): mixed {
        return match ($method) {
            'calc.double' => $data * 2,
            'calc.fail' => throw new RpcError('app_1001', 'always fails'),
            'calc.slow' => (function () { sleep(3); return 'late'; })(),
            default => throw new RpcError('not_found', "no method $method"),
        };
    });
    http_response_code($status);
    echo $answer;
} elseif ($path === '/hooks') {
    try {
        $events = Backend::webhookEvents($secret, $body, Signature::fromRequest());
    } catch (\UnexpectedValueException $e) {
        http_response_code($e->getCode());
        echo json_encode(['error' => ['code' => 'bad_request', 'message' => $e->getMessage()]]);
        return;
    }
    $log = getenv('HERALD_WEBHOOK_LOG');
    if ($log !== false && $log !== '') {
        $lines = implode('', array_map(fn (array $e): string => json_encode($e) . "\n", $events));
        file_put_contents($log, $lines, FILE_APPEND | LOCK_EX);
    }
    echo '{}';
} else {
    http_response_code(404);
    echo '{"error":{"code":"not_found","message":"no such path"}}';
}
