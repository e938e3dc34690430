// Thrown when Herald answers 401 with error code "unauthorized".
package io.herald.client;

/** The API key was missing or not accepted. */
public class UnauthorizedException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public UnauthorizedException(String code, int status, String message) {
        super(code, status, message);
    }
}
