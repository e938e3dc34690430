// Thrown when Herald answers 400 with error code "bad_request".
package io.herald.client;

/** The request was rejected as malformed: an invalid event, user or channel name, bad targets, or JSON the server could not read. */
public class BadRequestException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public BadRequestException(String code, int status, String message) {
        super(code, status, message);
    }
}
