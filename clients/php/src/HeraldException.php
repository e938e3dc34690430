<?php
// Base exception for every failed Herald call, carrying the server's error code and HTTP status.

declare(strict_types=1);

namespace Herald;

/**
 * A Herald call that did not succeed.
 *
 * The subclass says what went wrong (catch `UnauthorizedException`, `RateLimitedException`, ...);
 * `getErrorCode()` is the machine-readable code the server sent (or the one implied by the
 * status when the answer had no Herald error body), `getStatus()` the HTTP status, 0 when no
 * HTTP answer arrived at all (connection refused, timeout). `getCode()` returns the status too.
 */
class HeraldException extends \RuntimeException
{
    /** Which subclass each server error code maps to. */
    private const CLASS_BY_CODE = [
        'bad_request' => BadRequestException::class,
        'unauthorized' => UnauthorizedException::class,
        'forbidden' => ForbiddenException::class,
        'not_found' => NotFoundException::class,
        'too_large' => TooLargeException::class,
        'rate_limited' => RateLimitedException::class,
        'unavailable' => UnavailableException::class,
        'internal' => InternalException::class,
    ];

    /** Which code an HTTP status implies when the body does not say (proxies, bare 404s). */
    private const CODE_BY_STATUS = [
        400 => 'bad_request',
        401 => 'unauthorized',
        403 => 'forbidden',
        404 => 'not_found',
        413 => 'too_large',
        429 => 'rate_limited',
        500 => 'internal',
        // A load balancer in front of Herald answers 502/504 when no instance is reachable:
        // to the caller that is the same "try again later" as Herald's own 503.
        502 => 'unavailable',
        503 => 'unavailable',
        504 => 'unavailable',
    ];

    private string $errorCode;
    private int $status;

    public function __construct(string $message, string $errorCode, int $status, ?\Throwable $previous = null)
    {
        parent::__construct($message, $status, $previous);
        $this->errorCode = $errorCode;
        $this->status = $status;
    }

    /** The server's error code, e.g. "unauthorized"; "http_<status>" for a status Herald never sends. */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    /** The HTTP status of the answer, or 0 when the request got no answer. */
    public function getStatus(): int
    {
        return $this->status;
    }

    /**
     * Builds the exception for a non-2xx answer.
     *
     * A known code in a `{"error":{"code","message"}}` body picks the class, since it is the
     * server's most precise statement; otherwise the status does. Public so that the mapping can
     * be tested (and reused) without a server.
     *
     * @param int $status HTTP status of the answer
     * @param string $body raw response body
     * @param int|null $retryAfter seconds from a Retry-After header, if any
     */
    public static function fromResponse(int $status, string $body, ?int $retryAfter = null): self
    {
        $code = null;
        $message = null;
        $decoded = json_decode($body, true);
        if (is_array($decoded) && isset($decoded['error']) && is_array($decoded['error'])) {
            $error = $decoded['error'];
            if (isset($error['code']) && is_string($error['code']) && $error['code'] !== '') {
                $code = $error['code'];
            }
            if (isset($error['message']) && is_string($error['message'])) {
                $message = $error['message'];
            }
        }

        $class = self::CLASS_BY_CODE[$code ?? ''] ?? null;
        if ($class === null) {
            $implied = self::CODE_BY_STATUS[$status] ?? ($status >= 500 ? 'internal' : null);
            $class = $implied !== null ? self::CLASS_BY_CODE[$implied] : self::class;
            $code ??= $implied ?? 'http_' . $status;
        }
        $message ??= self::describeBody($status, $body);

        if ($class === RateLimitedException::class) {
            return new RateLimitedException($message, $code, $status, $retryAfter);
        }
        return new $class($message, $code, $status);
    }

    /** A readable message for an answer without a Herald error body: the status and a snippet. */
    private static function describeBody(int $status, string $body): string
    {
        $snippet = trim(preg_replace('/\s+/', ' ', $body) ?? '');
        if (strlen($snippet) > 200) {
            $snippet = substr($snippet, 0, 200) . '...';
        }
        return $snippet === '' ? "HTTP $status" : "HTTP $status: $snippet";
    }
}
