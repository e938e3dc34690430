// Thrown when Herald answers 500 with error code "internal".
package io.herald.client;

/** The server failed while handling the request; retrying may or may not help. */
public class InternalException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public InternalException(String code, int status, String message) {
        super(code, status, message);
    }
}
