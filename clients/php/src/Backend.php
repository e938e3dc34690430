<?php
// What a PHP backend needs when Herald calls it: read a signed webhook batch, answer a signed RPC call.

declare(strict_types=1);

namespace Herald;

/**
 * Framework-neutral: give it the raw body (`file_get_contents('php://input')`) and the
 * `X-Herald-Signature` header (`Signature::fromRequest()`), get plain arrays back.
 */
final class Backend
{
    /**
     * The events of a webhook POST, once its signature checked. Delivery is at least once: drop
     * events whose `id` you have seen.
     *
     * @return list<array<string, mixed>>
     * @throws \UnexpectedValueException on a bad signature (answer 401) or a body that is not a batch (400)
     */
    public static function webhookEvents(string $secret, string $body, ?string $signature): array
    {
        if (!Signature::verify($secret, $body, $signature)) {
            throw new \UnexpectedValueException('X-Herald-Signature does not match this body and secret', 401);
        }
        $decoded = json_decode($body, true);
        if (!is_array($decoded) || !isset($decoded['events']) || !is_array($decoded['events'])) {
            throw new \UnexpectedValueException('a webhook body is {"events": [...]}', 400);
        }
        return array_values($decoded['events']);
    }

    /**
     * Answers one RPC call: checks the signature, calls `$handler(string $method, mixed $data,
     * string $user, string $conn)` and returns `[status, json body]` to send. A thrown `RpcError`
     * answers its code and message; any other exception answers `internal` (its text stays out of
     * the answer).
     *
     * @param callable(string, mixed, string, string): mixed $handler
     * @return array{int, string}
     */
    public static function answerRpc(string $secret, string $body, ?string $signature, callable $handler): array
    {
        if (!Signature::verify($secret, $body, $signature)) {
            return [401, '{"error":{"code":"unauthorized","message":"bad signature"}}'];
        }
        $call = json_decode($body, true);
        if (!is_array($call) || !is_string($call['method'] ?? null) || !is_string($call['user'] ?? null) || !is_string($call['conn'] ?? null)) {
            return [400, '{"error":{"code":"bad_request","message":"not an RPC call"}}'];
        }
        try {
            $answer = ['result' => $handler($call['method'], $call['data'] ?? null, $call['user'], $call['conn'])];
        } catch (RpcError $e) {
            $answer = ['error' => ['code' => $e->getErrorCode(), 'message' => $e->getMessage()]];
        } catch (\Throwable $e) {
            error_log('herald rpc handler failed: ' . $e->getMessage());
            $answer = ['error' => ['code' => 'internal', 'message' => 'the backend failed']];
        }
        return [200, json_encode($answer, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION)];
    }
}
