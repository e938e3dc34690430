<?php
// Minimal HS256 JSON Web Token encoder, so a backend can mint Herald tokens without a JWT library.

declare(strict_types=1);

namespace Herald;

/**
 * HS256 JWT signing (RFC 7519 / RFC 7515 compact form).
 *
 * Only signing: verifying is the Herald server's job. Kept separate from `Client` so the exact
 * bytes produced for given claims can be tested against a known answer.
 */
final class Jwt
{
    private function __construct()
    {
    }

    /**
     * Encodes and signs `$claims` (key order preserved) with HMAC-SHA256 under `$secret`.
     *
     * @param array<string, mixed> $claims
     */
    public static function encodeHs256(array $claims, string $secret): string
    {
        $header = self::base64Url(self::json(['alg' => 'HS256', 'typ' => 'JWT']));
        $body = self::base64Url(self::json($claims));
        $signingInput = $header . '.' . $body;
        $signature = hash_hmac('sha256', $signingInput, $secret, true);
        return $signingInput . '.' . self::base64Url($signature);
    }

    /** Base64url without padding, as JWT requires. */
    public static function base64Url(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    private static function json(array $value): string
    {
        // Compact, with slashes and non-ASCII left as they are: the same bytes as the Java and
        // Python clients produce for the same claims (any escaping would still verify).
        return json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
    }
}
