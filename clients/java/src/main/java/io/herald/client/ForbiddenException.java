// Thrown when Herald answers 403 with error code "forbidden".
package io.herald.client;

/** The credentials are valid but do not allow this call. */
public class ForbiddenException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public ForbiddenException(String code, int status, String message) {
        super(code, status, message);
    }
}
