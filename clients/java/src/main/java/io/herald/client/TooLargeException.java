// Thrown when Herald answers 413 with error code "too_large".
package io.herald.client;

/** The request body exceeded the server's payload limit ({@code --max-payload-bytes}, 64 KiB by default). */
public class TooLargeException extends HeraldException {
    private static final long serialVersionUID = 1L;

    public TooLargeException(String code, int status, String message) {
        super(code, status, message);
    }
}
