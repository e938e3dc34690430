<?php
// Thrown when Herald answers 503 "unavailable" or cannot be reached at all (refused, timed out).

declare(strict_types=1);

namespace Herald;

/**
 * Herald could not accept the event right now: it answered 503 (e.g. NATS unreachable), a proxy
 * answered 502/504, or the request got no answer (status 0: connection refused, DNS failure,
 * timeout). Safe to retry later; note that after a timeout the event may have been accepted.
 */
class UnavailableException extends HeraldException
{
    /** The exception for a request that got no HTTP answer; `$detail` says why (curl's message). */
    public static function transport(string $detail, ?\Throwable $previous = null): self
    {
        return new self('Herald unreachable: ' . $detail, 'unavailable', 0, $previous);
    }
}
