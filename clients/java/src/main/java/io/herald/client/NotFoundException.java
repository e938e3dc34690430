// Thrown when Herald answers 404 with error code "not_found".
package io.herald.client;

/** The addressed resource or route does not exist (for example a server too old to have this endpoint). */
public class NotFoundException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public NotFoundException(String code, int status, String message) {
        super(code, status, message);
    }
}
