// Thrown when Herald answers 503 "unavailable" or cannot be reached at all (refused, timed out).
package io.herald.client;

/**
 * Herald could not accept the event right now: it answered 503 (e.g. NATS unreachable), a proxy
 * answered 502/504, or the request got no answer ({@link #status()} 0: connection refused, DNS
 * failure, timeout, interruption). Safe to retry later; after a timeout the event may
 * nevertheless have been accepted.
 */
public class UnavailableException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public UnavailableException(String code, int status, String message, Throwable cause) {
        super(code, status, message, cause);
    }

    /** The exception for a request that got no HTTP answer; {@code detail} says why. */
    static UnavailableException transport(String detail, Throwable cause) {
        return new UnavailableException("unavailable", 0, "Herald unreachable: " + detail, cause);
    }
}
