<?php
// Thrown when Herald answers 429 "rate_limited"; carries the Retry-After delay when the server gave one.

declare(strict_types=1);

namespace Herald;

/** The caller sent too many requests; wait `getRetryAfter()` seconds (when known) before retrying. */
class RateLimitedException extends HeraldException
{
    private ?int $retryAfter;

    public function __construct(string $message, string $errorCode, int $status, ?int $retryAfter = null, ?\Throwable $previous = null)
    {
        parent::__construct($message, $errorCode, $status, $previous);
        $this->retryAfter = $retryAfter;
    }

    /** Seconds the server asked to wait (its Retry-After header), or null when it did not say. */
    public function getRetryAfter(): ?int
    {
        return $this->retryAfter;
    }
}
