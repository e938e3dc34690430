// Thrown when Herald answers 429 "rate_limited"; carries the Retry-After delay when the server gave one.
package io.herald.client;

import java.time.Duration;
import java.util.Optional;

/** Too many requests: wait {@link #retryAfter()} (when the server said) before trying again. */
public class RateLimitedException extends HeraldException {
    private static final long serialVersionUID = 1L;

    private final Duration retryAfter;

    public RateLimitedException(String code, int status, String message, Duration retryAfter) {
        super(code, status, message);
        this.retryAfter = retryAfter;
    }

    /** The delay of the server's Retry-After header, if it sent one in seconds. */
    public Optional<Duration> retryAfter() {
        return Optional.ofNullable(retryAfter);
    }
}
