// Thrown by an RPC handler to answer {"error":{"code","message"}}; the browser's promise rejects with that code.
package io.herald.client;

import java.util.Set;

/**
 * An RPC failure the caller should see. The code is one of Herald's ({@code bad_request},
 * {@code unauthorized}, {@code forbidden}, {@code not_found}, {@code too_large},
 * {@code rate_limited}, {@code unavailable}, {@code internal}) or an application code
 * {@code app_1000} to {@code app_1999}.
 */
public final class RpcError extends Exception {
    private static final long serialVersionUID = 1L;
    private static final Set<String> HERALD_CODES = Set.of("bad_request", "unauthorized", "forbidden",
            "not_found", "too_large", "rate_limited", "unavailable", "internal");

    private final String code;

    public RpcError(String code, String message) {
        super(message);
        if (!HERALD_CODES.contains(code) && !code.matches("app_1[0-9]{3}")) {
            throw new IllegalArgumentException("RPC error code \"" + code + "\": use one of Herald's codes or app_1000 to app_1999");
        }
        this.code = code;
    }

    /** The code the caller sees. */
    public String code() {
        return code;
    }
}
