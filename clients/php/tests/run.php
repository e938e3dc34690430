<?php
// Unit tests for the Herald PHP client (JWT, error mapping, HTTP against a local `php -S` fixture); no PHPUnit needed.

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

use Herald\BadRequestException;
use Herald\Client;
use Herald\ForbiddenException;
use Herald\HeraldException;
use Herald\InternalException;
use Herald\Jwt;
use Herald\NotFoundException;
use Herald\RateLimitedException;
use Herald\TooLargeException;
use Herald\UnauthorizedException;
use Herald\UnavailableException;

// ---- a tiny test harness -------------------------------------------------------------------

/** @var array<string, callable> $tests */
$tests = [];

function test(string $name, callable $body): void
{
    $GLOBALS['tests'][$name] = $body;
}

final class AssertionFailed extends \Exception
{
}

function check(bool $condition, string $what): void
{
    if (!$condition) {
        throw new AssertionFailed($what);
    }
}

function same(mixed $expected, mixed $actual, string $what = 'value'): void
{
    if ($expected !== $actual) {
        throw new AssertionFailed("$what: expected " . var_export($expected, true) . ', got ' . var_export($actual, true));
    }
}

/** Runs `$body`, which must throw a `$class`; returns the exception for further checks. */
function throws(string $class, callable $body): \Throwable
{
    try {
        $body();
    } catch (\Throwable $e) {
        if ($e instanceof $class) {
            return $e;
        }
        throw new AssertionFailed("expected $class, got " . get_class($e) . ': ' . $e->getMessage());
    }
    throw new AssertionFailed("expected $class, nothing was thrown");
}

/** Base64url decoding written here, independent of the client's encoder. */
function b64urlDecode(string $text): string
{
    $padded = str_pad(strtr($text, '-_', '+/'), (int) (ceil(strlen($text) / 4) * 4), '=');
    $bytes = base64_decode($padded, true);
    check($bytes !== false, "valid base64url: $text");
    return $bytes;
}

// ---- the fixture server ---------------------------------------------------------------------

/** A port nothing listens on right now (bound by the OS, then released). */
function freePort(): int
{
    $socket = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    check($socket !== false, "bind a free port: $errstr");
    $name = stream_socket_get_name($socket, false);
    fclose($socket);
    return (int) substr($name, strrpos($name, ':') + 1);
}

$recordFile = tempnam(sys_get_temp_dir(), 'herald-php-test-');
$port = freePort();
$server = proc_open(
    [PHP_BINARY, '-S', "127.0.0.1:$port", __DIR__ . '/fixtures/server.php'],
    [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
    $pipes,
    null,
    ['HERALD_TEST_RECORD' => $recordFile],
);
register_shutdown_function(static function () use ($server, $recordFile): void {
    proc_terminate($server);
    proc_close($server);
    @unlink($recordFile);
});
// Wait (with a deadline, not a fixed sleep) until the server accepts connections.
$deadline = microtime(true) + 10;
while (true) {
    $probe = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 0.2);
    if ($probe !== false) {
        fclose($probe);
        break;
    }
    if (microtime(true) > $deadline) {
        fwrite(STDERR, "fixture server did not start on port $port\n");
        exit(1);
    }
    usleep(50_000);
}
$base = "http://127.0.0.1:$port";

/** The last request the fixture server saw. */
function lastRequest(): array
{
    $seen = json_decode((string) file_get_contents($GLOBALS['recordFile']), true);
    check(is_array($seen), 'the fixture server recorded a request');
    return $seen;
}

const KNOWN_TOKEN = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9'
    . '.eyJzdWIiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwLCJjaGFubmVscyI6WyJwcml2YXRlLSoiXX0'
    . '.aNjrGcUqKhtKrqkUqwR1PFG8qp3HLJAy52ZtKZch3Ys';

// ---- JWT --------------------------------------------------------------------------------------

test('jwt: known answer shared by all Herald clients', function (): void {
    // Computed independently (Python hmac and openssl); the Java and Python clients check the same bytes.
    $claims = ['sub' => 'alice', 'iat' => 1700000000, 'exp' => 1700003600, 'channels' => ['private-*']];
    same(KNOWN_TOKEN, Jwt::encodeHs256($claims, 'test-secret'), 'token');
});

test('jwt: mintToken header, claims and signature', function (): void {
    $client = new Client('http://127.0.0.1:1', 'key', ['jwt_secret' => 's3cret']);
    $before = time();
    $token = $client->mintToken('bob', ['private-*', 'team-1'], 120);
    $after = time();

    check(preg_match('/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/', $token) === 1,
        "three base64url parts without padding: $token");
    [$h, $c, $s] = explode('.', $token);
    same(['alg' => 'HS256', 'typ' => 'JWT'], json_decode(b64urlDecode($h), true), 'header');
    $claims = json_decode(b64urlDecode($c), true);
    same('bob', $claims['sub'], 'sub');
    same(['private-*', 'team-1'], $claims['channels'], 'channels');
    check($claims['iat'] >= $before && $claims['iat'] <= $after, 'iat is now');
    same(120, $claims['exp'] - $claims['iat'], 'exp - iat');
    // The signature, recomputed here from the raw parts.
    $expected = hash_hmac('sha256', "$h.$c", 's3cret', true);
    same($expected, b64urlDecode($s), 'HMAC-SHA256 signature');
});

test('jwt: no channels claim when none are granted', function (): void {
    $client = new Client('http://127.0.0.1:1', 'key', ['jwt_secret' => 's']);
    [, $c] = explode('.', $client->mintToken('carol'));
    $claims = json_decode(b64urlDecode($c), true);
    check(!array_key_exists('channels', $claims), 'no channels claim');
    same(3600, $claims['exp'] - $claims['iat'], 'default ttl');
});

test('jwt: mintToken without jwt_secret or with a bad ttl', function (): void {
    throws(\LogicException::class, fn () => (new Client('http://x', 'k'))->mintToken('u'));
    $client = new Client('http://x', 'k', ['jwt_secret' => 's']);
    throws(\InvalidArgumentException::class, fn () => $client->mintToken('u', [], 0));
    throws(\InvalidArgumentException::class, fn () => $client->mintToken(''));
});

// ---- error mapping from canned bodies ----------------------------------------------------------

test('errors: each Herald code maps to its class', function (): void {
    $cases = [
        ['bad_request', 400, BadRequestException::class],
        ['unauthorized', 401, UnauthorizedException::class],
        ['forbidden', 403, ForbiddenException::class],
        ['not_found', 404, NotFoundException::class],
        ['too_large', 413, TooLargeException::class],
        ['rate_limited', 429, RateLimitedException::class],
        ['unavailable', 503, UnavailableException::class],
        ['internal', 500, InternalException::class],
    ];
    foreach ($cases as [$code, $status, $class]) {
        $body = json_encode(['error' => ['code' => $code, 'message' => "msg $code"]]);
        $e = HeraldException::fromResponse($status, $body);
        same($class, get_class($e), "class for $code");
        check($e instanceof HeraldException, 'extends HeraldException');
        same($code, $e->getErrorCode(), 'code');
        same($status, $e->getStatus(), 'status');
        same("msg $code", $e->getMessage(), 'message');
    }
});

test('errors: a body not in Herald shape maps by status', function (): void {
    $e = HeraldException::fromResponse(502, '<html>Bad Gateway</html>');
    same(UnavailableException::class, get_class($e), 'class for 502');
    same('unavailable', $e->getErrorCode(), 'code');
    same('HTTP 502: <html>Bad Gateway</html>', $e->getMessage(), 'message');

    $e = HeraldException::fromResponse(413, '');
    same(TooLargeException::class, get_class($e), 'class for bare 413');
    same('too_large', $e->getErrorCode(), 'code');
    same('HTTP 413', $e->getMessage(), 'message');

    $e = HeraldException::fromResponse(401, '{"error":"nope"}');
    same(UnauthorizedException::class, get_class($e), 'class for odd JSON');
});

test('errors: unknown code keeps its name, class from status', function (): void {
    $e = HeraldException::fromResponse(400, '{"error":{"code":"bad_target","message":"m"}}');
    same(BadRequestException::class, get_class($e), 'class');
    same('bad_target', $e->getErrorCode(), 'code');
});

test('errors: statuses Herald never sends', function (): void {
    $e = HeraldException::fromResponse(409, '');
    same(HeraldException::class, get_class($e), 'class for 409');
    same('http_409', $e->getErrorCode(), 'code');
    same(409, $e->getCode(), 'getCode is the status');
    same(InternalException::class, get_class(HeraldException::fromResponse(507, '')), 'class for 507');
});

test('errors: Retry-After is carried on rate_limited', function (): void {
    $e = HeraldException::fromResponse(429, '{"error":{"code":"rate_limited","message":"m"}}', 30);
    check($e instanceof RateLimitedException, 'RateLimitedException');
    same(30, $e->getRetryAfter(), 'retry after');
});

// ---- HTTP, against the fixture server -----------------------------------------------------------

test('http: notifyUser sends the documented request', function () use ($base): void {
    $client = new Client("$base/ok/", 'the-key');
    same('evt-42', $client->notifyUser('alice', 'MESSAGE:NEW', ['text' => 'héllo/€', 'n' => 1.0]), 'event id');
    $seen = lastRequest();
    same('POST', $seen['method'], 'method');
    same('/ok/v1/notify/user/alice', $seen['uri'], 'path (base URL prefix kept, trailing slash dropped)');
    same('Bearer the-key', $seen['headers']['authorization'], 'authorization');
    same('application/json', $seen['headers']['content-type'], 'content type');
    same('{"event":"MESSAGE:NEW","payload":{"text":"héllo/€","n":1.0}}', $seen['body'], 'body');
});

test('http: notifyChannel path and empty-object payload', function () use ($base): void {
    $client = new Client("$base/ok", 'k');
    same('evt-42', $client->notifyChannel('chat', 'E', new \stdClass()), 'event id');
    $seen = lastRequest();
    same('/ok/v1/notify/channel/chat', $seen['uri'], 'path');
    same('{"event":"E","payload":{}}', $seen['body'], 'body');
});

test('http: notify with users and channels', function () use ($base): void {
    $client = new Client("$base/ok", 'k');
    $users = array_filter(['x', 'bob'], fn ($u) => $u !== 'x'); // keys [1 => 'bob']
    same('evt-42', $client->notify(['users' => $users, 'channels' => ['chat']], 'E', [1, 2]), 'event id');
    $seen = lastRequest();
    same('/ok/v1/notify', $seen['uri'], 'path');
    same('{"event":"E","targets":{"users":["bob"],"channels":["chat"]},"payload":[1,2]}', $seen['body'], 'body');
    throws(\InvalidArgumentException::class, fn () => $client->notify([], 'E'));
    throws(\InvalidArgumentException::class, fn () => $client->notify(['users' => 'bob'], 'E'));
});

test('http: broadcast', function () use ($base): void {
    same('evt-42', (new Client("$base/ok", 'k'))->broadcast('E'), 'event id');
    same('{"event":"E","targets":{"broadcast":true},"payload":null}', lastRequest()['body'], 'body');
});

test('http: names are percent-encoded except : and @', function () use ($base): void {
    (new Client("$base/ok", 'k'))->notifyUser('a b/c:d@e', 'E');
    same('/ok/v1/notify/user/a%20b%2Fc:d@e', lastRequest()['uri'], 'path');
    throws(\InvalidArgumentException::class, fn () => (new Client("$base/ok", 'k'))->notifyChannel('', 'E'));
});

test('http: Herald error body becomes a typed exception', function () use ($base): void {
    $e = throws(UnauthorizedException::class, fn () => (new Client("$base/err/401/unauthorized", 'k'))->notifyUser('u', 'E'));
    same('unauthorized', $e->getErrorCode(), 'code');
    same(401, $e->getStatus(), 'status');
    same('server says unauthorized', $e->getMessage(), 'message');
    $e = throws(TooLargeException::class, fn () => (new Client("$base/err/413/too_large", 'k'))
        ->notifyUser('u', 'E', ['blob' => str_repeat('x', 70000)]));
    same(413, $e->getStatus(), 'status');
});

test('http: proxy page maps by status', function () use ($base): void {
    $e = throws(UnavailableException::class, fn () => (new Client("$base/plain/503", 'k'))->broadcast('E'));
    same('unavailable', $e->getErrorCode(), 'code');
    same(503, $e->getStatus(), 'status');
});

test('http: Retry-After header', function () use ($base): void {
    $e = throws(RateLimitedException::class, fn () => (new Client("$base/retry", 'k'))->broadcast('E'));
    same(7, $e->getRetryAfter(), 'retry after');
});

test('http: connection refused is unavailable with status 0', function (): void {
    $port = freePort();
    $e = throws(UnavailableException::class, fn () => (new Client("http://127.0.0.1:$port", 'k'))->broadcast('E'));
    same('unavailable', $e->getErrorCode(), 'code');
    same(0, $e->getStatus(), 'status');
});

test('http: timeout is unavailable with status 0', function () use ($base): void {
    $start = microtime(true);
    $e = throws(UnavailableException::class, fn () => (new Client("$base/slow", 'k', ['timeout' => 0.2]))->broadcast('E'));
    same(0, $e->getStatus(), 'status');
    check(microtime(true) - $start < 0.9, 'gave up at the timeout');
});

test('http: a 2xx without an event id is an error', function () use ($base): void {
    $e = throws(HeraldException::class, fn () => (new Client("$base/noid", 'k'))->broadcast('E'));
    same('invalid_response', $e->getErrorCode(), 'code');
    same(200, $e->getStatus(), 'status');
});

test('client: bad options and payloads are rejected locally', function (): void {
    throws(\InvalidArgumentException::class, fn () => new Client('http://x', 'k', ['jwtSecret' => 's']));
    throws(\InvalidArgumentException::class, fn () => new Client('x', 'k'));
    throws(\InvalidArgumentException::class, fn () => new Client('http://x', 'k', ['timeout' => 0]));
    throws(\InvalidArgumentException::class, fn () => (new Client('http://x', 'k'))->broadcast('E', NAN));
});

// ---- backend helpers ------------------------------------------------------------------------------

// The vector shared by the Rust, PHP, Java and Python tests.
const SHARED_SECRET = 'herald-shared-test-secret';
const SHARED_BODY = '{"method":"calc.double","data":10,"user":"alice","conn":"g-1"}';
const SHARED_SIGNATURE = 'sha256=ca5ab0e0a12c99ee841484ea8316b1e24b852bf0b9c806e3a197e0c8d064de39';

test('signature: the shared vector', function (): void {
    same(SHARED_SIGNATURE, \Herald\Signature::sign(SHARED_SECRET, SHARED_BODY));
    check(\Herald\Signature::verify(SHARED_SECRET, SHARED_BODY, ' ' . SHARED_SIGNATURE), 'verifies');
    check(!\Herald\Signature::verify(SHARED_SECRET, SHARED_BODY . ' ', SHARED_SIGNATURE), 'another body');
    check(!\Herald\Signature::verify('other', SHARED_BODY, SHARED_SIGNATURE), 'another secret');
    check(!\Herald\Signature::verify(SHARED_SECRET, SHARED_BODY, null), 'no header');
});

test('backend: webhook events come out once signed', function (): void {
    $body = '{"events":[{"id":"e1","type":"online","time_ms":1,"user":"alice"}]}';
    $events = \Herald\Backend::webhookEvents(SHARED_SECRET, $body, \Herald\Signature::sign(SHARED_SECRET, $body));
    same([['id' => 'e1', 'type' => 'online', 'time_ms' => 1, 'user' => 'alice']], $events);
    $e = throws(\UnexpectedValueException::class, fn () => \Herald\Backend::webhookEvents(SHARED_SECRET, $body, 'sha256=00'));
    same(401, $e->getCode(), 'status');
    $e = throws(\UnexpectedValueException::class, fn () => \Herald\Backend::webhookEvents(SHARED_SECRET, '[1]', \Herald\Signature::sign(SHARED_SECRET, '[1]')));
    same(400, $e->getCode(), 'status');
});

test('backend: RPC results, coded errors, bad signatures', function (): void {
    $handler = function (string $method, mixed $data, string $user, string $conn): mixed {
        return match ($method) {
            'calc.double' => ['doubled' => $data * 2, 'user' => $user, 'conn' => $conn],
            'calc.fail' => throw new \Herald\RpcError('app_1001', 'always fails'),
            default => throw new \RuntimeException('secret detail'),
        };
    };
    $call = fn (string $method) => \Herald\Backend::answerRpc(SHARED_SECRET, $b = json_encode(['method' => $method, 'data' => 10, 'user' => 'alice', 'conn' => 'g-1']), \Herald\Signature::sign(SHARED_SECRET, $b), $handler);
    same([200, '{"result":{"doubled":20,"user":"alice","conn":"g-1"}}'], $call('calc.double'));
    same([200, '{"error":{"code":"app_1001","message":"always fails"}}'], $call('calc.fail'));
    [$status, $body] = $call('calc.bug');
    same(200, $status, 'status');
    check(str_contains($body, '"internal"') && !str_contains($body, 'secret detail'), "internal, no detail: $body");
    same(401, \Herald\Backend::answerRpc(SHARED_SECRET, SHARED_BODY, 'sha256=00', $handler)[0], 'bad signature');
    same(400, \Herald\Backend::answerRpc(SHARED_SECRET, '{}', \Herald\Signature::sign(SHARED_SECRET, '{}'), $handler)[0], 'not a call');
    throws(\InvalidArgumentException::class, fn () => new \Herald\RpcError('app_2000', 'out of range'));
});

test('client: notifyBatch checks the list before any request', function (): void {
    throws(\InvalidArgumentException::class, fn () => (new Client('http://127.0.0.1:9', 'k'))->notifyBatch([]));
    $many = array_fill(0, 101, ['event' => 'E', 'targets' => ['users' => ['u']]]);
    throws(\InvalidArgumentException::class, fn () => (new Client('http://127.0.0.1:9', 'k'))->notifyBatch($many));
});

// ---- run ------------------------------------------------------------------------------------------

$passed = 0;
$failed = 0;
foreach ($tests as $name => $body) {
    try {
        $body();
        $passed++;
        echo "ok   $name\n";
    } catch (\Throwable $e) {
        $failed++;
        $where = $e instanceof AssertionFailed ? '' : ' (' . get_class($e) . ' at ' . basename($e->getFile()) . ':' . $e->getLine() . ')';
        echo "FAIL $name: {$e->getMessage()}$where\n";
    }
}
echo "php: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
