<?php
// End-to-end check of the PHP client against a running Herald, driven by HERALD_* environment variables.
//
// Run by the Rust test harness: php clients/php/tests/e2e.php. Prints `TOKEN <jwt>` and `E2E OK`
// on stdout (diagnostics go to stderr) and exits 0, or says what it expected and got and exits 1.

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

use Herald\BadRequestException;
use Herald\Client;
use Herald\HeraldException;
use Herald\TooLargeException;
use Herald\UnauthorizedException;

function fail(string $message): never
{
    fwrite(STDOUT, "E2E FAIL: $message\n");
    exit(1);
}

function env(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        fail("environment variable $name is not set");
    }
    return $value;
}

/** Runs one notify call that must succeed and return a non-empty event id. */
function expectId(string $step, callable $call): void
{
    try {
        $id = $call();
    } catch (\Throwable $e) {
        fail("$step: expected an event id, got " . get_class($e) . ': ' . $e->getMessage());
    }
    if (!is_string($id) || $id === '') {
        fail("$step: expected a non-empty event id, got " . var_export($id, true));
    }
    fwrite(STDERR, "$step: event id $id\n");
}

/** Runs a call that must throw `$class` with `$code` and `$status`. */
function expectError(string $step, string $class, string $code, int $status, callable $call): void
{
    try {
        $call();
    } catch (HeraldException $e) {
        $got = get_class($e) . " code={$e->getErrorCode()} status={$e->getStatus()}";
        if (!($e instanceof $class) || $e->getErrorCode() !== $code || $e->getStatus() !== $status) {
            fail("$step: expected $class code=$code status=$status, got $got ({$e->getMessage()})");
        }
        fwrite(STDERR, "$step: got $got as expected\n");
        return;
    } catch (\Throwable $e) {
        fail("$step: expected $class, got " . get_class($e) . ': ' . $e->getMessage());
    }
    fail("$step: expected $class code=$code status=$status, the call succeeded");
}

$url = env('HERALD_URL');
$user = env('HERALD_TEST_USER');
$channel = env('HERALD_TEST_CHANNEL');
$tag = env('HERALD_TEST_TAG');
$client = new Client($url, env('HERALD_API_KEY'), ['jwt_secret' => env('HERALD_JWT_SECRET'), 'timeout' => 10]);

expectId('notifyUser', fn () => $client->notifyUser($user, 'CLIENT:USER', ['lang' => $tag, 'kind' => 'user']));
expectId('notifyChannel', fn () => $client->notifyChannel($channel, 'CLIENT:CHANNEL', ['lang' => $tag, 'kind' => 'channel']));
expectId('notify', fn () => $client->notify(
    ['users' => [$user], 'channels' => [$channel]],
    'CLIENT:BOTH',
    ['lang' => $tag, 'kind' => 'both'],
));

$ids = $client->notifyBatch([
    ['event' => 'CLIENT:BATCH', 'targets' => ['users' => [$user]], 'payload' => ['lang' => $tag, 'kind' => 'batch', 'n' => 0]],
    ['event' => 'CLIENT:BATCH', 'targets' => ['users' => [$user]], 'payload' => ['lang' => $tag, 'kind' => 'batch', 'n' => 1]],
]);
if (count($ids) !== 2 || in_array('', $ids, true)) {
    fail('notifyBatch returned ' . json_encode($ids));
}
fwrite(STDERR, 'notifyBatch: event ids ' . implode(', ', $ids) . "\n");

// The user's history holds what was sent to it, oldest first; `since` reads on from a position.
$history = $client->history(['user' => $user]);
$names = array_map(fn ($e) => $e['event'], $history['events']);
if ($names !== ['CLIENT:USER', 'CLIENT:BOTH', 'CLIENT:BATCH', 'CLIENT:BATCH']) {
    fail('history: ' . json_encode($history));
}
$first = $history['events'][0]['pos']['users'][$user];
$after = $client->history(['user' => $user], $first, 1);
if (($after['recovered'] ?? null) !== true || $after['more'] !== true || $after['events'][0]['event'] !== 'CLIENT:BOTH') {
    fail('history since: ' . json_encode($after));
}
expectError('bad position', BadRequestException::class, 'bad_request', 400,
    fn () => $client->history(['channel' => $channel], 'not-a-position'));
fwrite(STDERR, "history: 4 events, since and limit\n");

$wrongKey = new Client($url, 'wrong-key', ['timeout' => 10]);
expectError('wrong key', UnauthorizedException::class, 'unauthorized', 401,
    fn () => $wrongKey->notifyUser($user, 'CLIENT:USER', ['lang' => $tag, 'kind' => 'user']));

expectError('oversized payload', TooLargeException::class, 'too_large', 413,
    fn () => $client->notifyUser($user, 'CLIENT:USER', ['blob' => str_repeat('x', 70000)]));

try {
    $token = $client->mintToken($user, ['private-*'], 60);
} catch (\Throwable $e) {
    fail('mintToken: expected a token, got ' . get_class($e) . ': ' . $e->getMessage());
}
echo "TOKEN $token\n";
echo "E2E OK\n";
exit(0);
