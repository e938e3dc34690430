<?php
// Herald REST API v1 client: pushes events to users, channels or everyone, and mints client tokens.

declare(strict_types=1);

namespace Herald;

/**
 * Talks to a Herald REST adapter (`POST /v1/notify...`) with an API key.
 *
 * Every notify method returns the event id from the server's `202 {"id": ...}` answer. A 2xx
 * means NATS accepted the event, so it is not silently dropped; anything else throws a
 * `HeraldException` subclass. The client holds no connection state: one instance can be shared
 * freely and used for the lifetime of the process.
 */
final class Client
{
    public const VERSION = '0.1.0';

    /** Options the constructor accepts; anything else is a typo worth failing on. */
    private const OPTIONS = ['jwt_secret', 'timeout'];

    private string $baseUrl;
    private string $apiKey;
    private ?string $jwtSecret;
    /** Whole-request time limit in seconds (connect + send + answer). */
    private float $timeout;

    /**
     * @param string $baseUrl REST base URL, e.g. "http://127.0.0.1:8081" (a path prefix is kept)
     * @param string $apiKey API key sent as `Authorization: Bearer <key>`
     * @param array{jwt_secret?: string, timeout?: int|float} $options
     *        `jwt_secret`: the server's JWT secret, needed only by mintToken();
     *        `timeout`: seconds before a request is abandoned (default 5)
     */
    public function __construct(string $baseUrl, string $apiKey, array $options = [])
    {
        $unknown = array_diff(array_keys($options), self::OPTIONS);
        if ($unknown !== []) {
            throw new \InvalidArgumentException('unknown Herald client option(s): ' . implode(', ', $unknown)
                . '; known: ' . implode(', ', self::OPTIONS));
        }
        if (!preg_match('#^https?://#i', $baseUrl)) {
            throw new \InvalidArgumentException("Herald base URL must start with http:// or https://, got \"$baseUrl\"");
        }
        $timeout = $options['timeout'] ?? 5;
        if ((!is_int($timeout) && !is_float($timeout)) || $timeout <= 0) {
            throw new \InvalidArgumentException('timeout must be a positive number of seconds');
        }
        $secret = $options['jwt_secret'] ?? null;
        if ($secret !== null && (!is_string($secret) || $secret === '')) {
            throw new \InvalidArgumentException('jwt_secret must be a non-empty string');
        }

        $this->baseUrl = rtrim($baseUrl, '/');
        $this->apiKey = $apiKey;
        $this->jwtSecret = $secret;
        $this->timeout = (float) $timeout;
    }

    /**
     * Sends `$event` to every connection identified as `$user`.
     *
     * @param mixed $payload any JSON-encodable value; use `new \stdClass()` for `{}` (PHP's `[]` is a JSON list)
     * @return string the event id
     * @throws HeraldException
     */
    public function notifyUser(string $user, string $event, mixed $payload = null): string
    {
        return $this->post('/v1/notify/user/' . self::pathSegment($user, 'user'), [
            'event' => $event,
            'payload' => $payload,
        ]);
    }

    /**
     * Sends `$event` to every connection that joined `$channel`.
     *
     * @return string the event id
     * @throws HeraldException
     */
    public function notifyChannel(string $channel, string $event, mixed $payload = null): string
    {
        return $this->post('/v1/notify/channel/' . self::pathSegment($channel, 'channel'), [
            'event' => $event,
            'payload' => $payload,
        ]);
    }

    /**
     * Sends `$event` to several users and channels at once (a connection reached twice gets it once),
     * or to every identified connection with `["broadcast" => true]`.
     *
     * @param array{users?: list<string>, channels?: list<string>, broadcast?: bool} $targets
     * @return string the event id
     * @throws HeraldException
     */
    public function notify(array $targets, string $event, mixed $payload = null): string
    {
        if ($targets === []) {
            throw new \InvalidArgumentException('targets must name users, channels or broadcast');
        }
        foreach (['users', 'channels'] as $kind) {
            if (array_key_exists($kind, $targets)) {
                if (!is_array($targets[$kind])) {
                    throw new \InvalidArgumentException("targets[\"$kind\"] must be a list of names");
                }
                // array_values: a filtered array like [1 => "bob"] would otherwise encode as an object.
                $targets[$kind] = array_values($targets[$kind]);
            }
        }
        return $this->post('/v1/notify', [
            'event' => $event,
            'targets' => $targets,
            'payload' => $payload,
        ]);
    }

    /**
     * Sends `$event` to every identified connection.
     *
     * @return string the event id
     * @throws HeraldException
     */
    public function broadcast(string $event, mixed $payload = null): string
    {
        return $this->notify(['broadcast' => true], $event, $payload);
    }

    /**
     * Sends up to 100 notify bodies (`["event" => …, "targets" => […], "payload" => …]`) in one
     * request; Herald publishes them in order. If any item is invalid nothing is sent, and the
     * exception's message names the bad items.
     *
     * @param list<array{event: string, targets: array, payload?: mixed}> $notifications
     * @return list<string> the event ids, in the order of the items
     * @throws HeraldException
     */
    public function notifyBatch(array $notifications): array
    {
        $count = count($notifications);
        if ($count < 1 || $count > 100 || !array_is_list($notifications)) {
            throw new \InvalidArgumentException('notifications must be a list of 1 to 100 notify bodies');
        }
        [$status, $decoded] = $this->postJson('/v1/notify/batch', ['notifications' => $notifications]);
        $ids = $decoded['ids'] ?? null;
        if (!is_array($ids) || count($ids) !== $count) {
            throw new HeraldException("HTTP $status without one id per item in the answer", 'invalid_response', $status);
        }
        return array_map('strval', $ids);
    }

    /**
     * Reads a channel's or a user's history: `GET /v1/channels/{c}/history` or
     * `GET /v1/users/{u}/history`. Without `$since`, the newest events; with it, the events after
     * that position and `recovered` (false: some may be gone, and none are returned).
     *
     * @param array{channel: string}|array{user: string} $target whose stream
     * @param ?string $since a `pos` from an event or an earlier answer
     * @param ?int $limit at most this many events (0 to 1000; 0 answers only `pos`)
     * @return array{events: list<array<string, mixed>>, pos: ?string, more: bool, recovered?: bool}
     * @throws HeraldException
     */
    public function history(array $target, ?string $since = null, ?int $limit = null): array
    {
        if (isset($target['channel']) && count($target) === 1) {
            $path = '/v1/channels/' . self::pathSegment((string) $target['channel'], 'channel') . '/history';
        } elseif (isset($target['user']) && count($target) === 1) {
            $path = '/v1/users/' . self::pathSegment((string) $target['user'], 'user') . '/history';
        } else {
            throw new \InvalidArgumentException('target must be ["channel" => …] or ["user" => …]');
        }
        $query = array_filter(['since' => $since, 'limit' => $limit], static fn ($v) => $v !== null);
        if ($query !== []) {
            $path .= '?' . http_build_query($query);
        }
        [$status, $responseBody, $retryAfter] = $this->send($path, null);
        if ($status < 200 || $status >= 300) {
            throw HeraldException::fromResponse($status, $responseBody, $retryAfter);
        }
        $decoded = json_decode($responseBody, true);
        if (!is_array($decoded) || !is_array($decoded['events'] ?? null)) {
            throw new HeraldException("HTTP $status without events in the answer", 'invalid_response', $status);
        }
        return $decoded;
    }

    /**
     * Mints an HS256 token a browser passes in its `ident` frame, signed locally with `jwt_secret`.
     *
     * @param string $user becomes the `sub` claim
     * @param list<string> $channels glob patterns the user may join (e.g. "private-*"); omitted when empty
     * @param int $ttlSeconds lifetime; `exp` = now + ttl
     * @throws \LogicException when the client was built without `jwt_secret`
     */
    public function mintToken(string $user, array $channels = [], int $ttlSeconds = 3600): string
    {
        if ($this->jwtSecret === null) {
            throw new \LogicException('mintToken() needs the "jwt_secret" option');
        }
        if ($user === '') {
            throw new \InvalidArgumentException('user must not be empty');
        }
        if ($ttlSeconds <= 0) {
            throw new \InvalidArgumentException('ttlSeconds must be positive');
        }
        $now = time();
        $claims = ['sub' => $user, 'iat' => $now, 'exp' => $now + $ttlSeconds];
        if ($channels !== []) {
            $claims['channels'] = array_values($channels);
        }
        return Jwt::encodeHs256($claims, $this->jwtSecret);
    }

    /**
     * Percent-encodes a name for one path segment. Valid Herald names (letters, digits, `_-.:@`)
     * pass through unchanged (`:` and `@` are legal in a segment); anything else is encoded so the
     * server sees the name as given and answers bad_request, rather than a different route.
     */
    private static function pathSegment(string $name, string $what): string
    {
        if ($name === '') {
            throw new \InvalidArgumentException("$what name must not be empty");
        }
        return str_replace(['%3A', '%40'], [':', '@'], rawurlencode($name));
    }

    /** POSTs a JSON body and returns the event id of the 202 answer, or throws. */
    private function post(string $path, array $body): string
    {
        [$status, $decoded] = $this->postJson($path, $body);
        $id = $decoded['id'] ?? null;
        if ((!is_string($id) && !is_int($id)) || $id === '') {
            // A 2xx without an id is not Herald (a wrong base URL hitting some other service?).
            throw new HeraldException("HTTP $status without an event id in the answer", 'invalid_response', $status);
        }
        return (string) $id;
    }

    /**
     * POSTs a JSON body and returns the status and decoded object of the 2xx answer, or throws.
     *
     * @return array{int, array<string, mixed>}
     */
    private function postJson(string $path, array $body): array
    {
        try {
            $json = json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
                | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new \InvalidArgumentException('payload is not JSON-encodable: ' . $e->getMessage(), 0, $e);
        }

        [$status, $responseBody, $retryAfter] = $this->send($path, $json);

        if ($status < 200 || $status >= 300) {
            throw HeraldException::fromResponse($status, $responseBody, $retryAfter);
        }
        $decoded = json_decode($responseBody, true);
        return [$status, is_array($decoded) ? $decoded : []];
    }

    /**
     * Performs the request with curl: a POST of `$json`, or a GET when it is null.
     *
     * @return array{int, string, ?int} status, body, Retry-After seconds
     * @throws UnavailableException when no HTTP answer arrived
     */
    private function send(string $path, ?string $json): array
    {
        $retryAfter = null;
        $curl = curl_init($this->baseUrl . $path);
        if ($json !== null) {
            curl_setopt_array($curl, [CURLOPT_POST => true, CURLOPT_POSTFIELDS => $json]);
        }
        curl_setopt_array($curl, [
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => [
                'Authorization: Bearer ' . $this->apiKey,
                'Content-Type: application/json',
                'Accept: application/json',
                'User-Agent: herald-php/' . self::VERSION,
            ],
            // curl's default "Expect: 100-continue" on large bodies is kept on purpose: the server
            // can answer 413 from the headers alone, before the body is sent.
            CURLOPT_TIMEOUT_MS => (int) ceil($this->timeout * 1000),
            CURLOPT_CONNECTTIMEOUT_MS => (int) ceil($this->timeout * 1000),
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_HEADERFUNCTION => static function ($curl, string $line) use (&$retryAfter): int {
                if (preg_match('/^Retry-After:\s*(\d+)\s*$/i', $line, $m)) {
                    $retryAfter = (int) $m[1];
                }
                return strlen($line);
            },
        ]);
        $body = curl_exec($curl);
        if ($body === false) {
            $detail = curl_error($curl) . ' (curl error ' . curl_errno($curl) . ')';
            curl_close($curl);
            throw UnavailableException::transport($detail);
        }
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        return [$status, (string) $body, $retryAfter];
    }
}
