// Base exception for every failed Herald call, carrying the server's error code and HTTP status.
package io.herald.client;

import java.time.Duration;
import java.util.Map;

/**
 * A Herald call that did not succeed.
 *
 * <p>The subclass says what went wrong (catch {@link UnauthorizedException},
 * {@link RateLimitedException}, ...); {@link #code()} is the machine-readable code the server
 * sent (or the one its HTTP status implies when the answer had no Herald error body), and
 * {@link #status()} the HTTP status, 0 when no HTTP answer arrived at all. Unchecked, like the
 * failures of most HTTP SDKs: catch it where you can act on it.
 */
public class HeraldException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The code an HTTP status implies when the body does not say (a proxy page, a bare 404). */
    private static final Map<Integer, String> CODE_BY_STATUS = Map.ofEntries(
            Map.entry(400, "bad_request"),
            Map.entry(401, "unauthorized"),
            Map.entry(403, "forbidden"),
            Map.entry(404, "not_found"),
            Map.entry(413, "too_large"),
            Map.entry(429, "rate_limited"),
            Map.entry(500, "internal"),
            // A load balancer answers 502/504 when no Herald is reachable: for the caller that is
            // the same "try again later" as Herald's own 503.
            Map.entry(502, "unavailable"),
            Map.entry(503, "unavailable"),
            Map.entry(504, "unavailable"));

    private final String code;
    private final int status;

    public HeraldException(String code, int status, String message) {
        this(code, status, message, null);
    }

    public HeraldException(String code, int status, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
        this.status = status;
    }

    /** The server's error code, e.g. {@code "unauthorized"}; {@code "http_<status>"} for a status Herald never sends. */
    public String code() {
        return code;
    }

    /** The HTTP status of the answer, or 0 when the request got no answer. */
    public int status() {
        return status;
    }

    @Override
    public String toString() {
        return getClass().getName() + ": " + getMessage() + " (" + code + ", "
                + (status == 0 ? "no HTTP answer" : "HTTP " + status) + ")";
    }

    /**
     * Builds the exception for a non-2xx answer.
     *
     * <p>A known code in a {@code {"error":{"code","message"}}} body picks the class, being the
     * server's most precise statement; otherwise the status does. An unknown code is kept as it
     * is. A status Herald never sends gives a plain {@code HeraldException} with code
     * {@code http_<status>} ({@link InternalException} for 5xx).
     *
     * @param status HTTP status of the answer
     * @param body raw response body (may be empty)
     * @param retryAfter the Retry-After delay the server gave, or null
     */
    public static HeraldException fromResponse(int status, String body, Duration retryAfter) {
        String code = null;
        String message = null;
        try {
            Object decoded = Json.parse(body == null ? "" : body);
            if (decoded instanceof Map && ((Map<?, ?>) decoded).get("error") instanceof Map) {
                Map<?, ?> error = (Map<?, ?>) ((Map<?, ?>) decoded).get("error");
                if (error.get("code") instanceof String && !((String) error.get("code")).isEmpty()) {
                    code = (String) error.get("code");
                }
                if (error.get("message") instanceof String) {
                    message = (String) error.get("message");
                }
            }
        } catch (IllegalArgumentException notJson) {
            // Not Herald's error shape: the status decides below.
        }
        if (message == null) {
            message = describeBody(status, body == null ? "" : body);
        }

        String kind = code != null && isKnown(code) ? code : null;
        if (kind == null) {
            kind = CODE_BY_STATUS.getOrDefault(status, status >= 500 ? "internal" : null);
            if (code == null) {
                code = kind != null ? kind : "http_" + status;
            }
        }
        if (kind == null) {
            return new HeraldException(code, status, message);
        }
        switch (kind) {
            case "bad_request": return new BadRequestException(code, status, message);
            case "unauthorized": return new UnauthorizedException(code, status, message);
            case "forbidden": return new ForbiddenException(code, status, message);
            case "not_found": return new NotFoundException(code, status, message);
            case "too_large": return new TooLargeException(code, status, message);
            case "rate_limited": return new RateLimitedException(code, status, message, retryAfter);
            case "unavailable": return new UnavailableException(code, status, message, null);
            default: return new InternalException(code, status, message);
        }
    }

    private static boolean isKnown(String code) {
        switch (code) {
            case "bad_request": case "unauthorized": case "forbidden": case "not_found":
            case "too_large": case "rate_limited": case "unavailable": case "internal":
                return true;
            default:
                return false;
        }
    }

    /** A readable message for an answer without a Herald error body: the status and a snippet. */
    private static String describeBody(int status, String body) {
        String snippet = body.replaceAll("\\s+", " ").trim();
        if (snippet.length() > 200) {
            snippet = snippet.substring(0, 200) + "...";
        }
        return snippet.isEmpty() ? "HTTP " + status : "HTTP " + status + ": " + snippet;
    }
}
