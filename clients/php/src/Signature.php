<?php
// The X-Herald-Signature of Herald's calls to backends (RPC, publish hook, webhooks): sign and verify.

declare(strict_types=1);

namespace Herald;

/**
 * `X-Herald-Signature: sha256=<lowercase hex HMAC-SHA256 of the exact body bytes under the secret>`.
 */
final class Signature
{
    public const HEADER = 'X-Herald-Signature';

    /** The header value for `$body` under `$secret`. */
    public static function sign(string $secret, string $body): string
    {
        return 'sha256=' . hash_hmac('sha256', $body, $secret);
    }

    /** Whether `$header` signs the exact `$body` (compared in constant time). */
    public static function verify(string $secret, string $body, ?string $header): bool
    {
        if ($header === null || $header === '') {
            return false;
        }
        return hash_equals(self::sign($secret, $body), trim($header));
    }

    /** The signature header of the current request, from `getallheaders()` or `$_SERVER`. */
    public static function fromRequest(): ?string
    {
        if (function_exists('getallheaders')) {
            foreach (getallheaders() as $name => $value) {
                if (strcasecmp($name, self::HEADER) === 0) {
                    return $value;
                }
            }
        }
        return $_SERVER['HTTP_X_HERALD_SIGNATURE'] ?? null;
    }
}
