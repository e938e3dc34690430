// The X-Herald-Signature of Herald's calls to backends (RPC, publish hook, webhooks): sign and verify.
package io.herald.client;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** {@code X-Herald-Signature: sha256=<lowercase hex HMAC-SHA256 of the exact body bytes under the secret>}. */
public final class Signature {
    /** The header carrying the signature. */
    public static final String HEADER = "X-Herald-Signature";

    private Signature() {
    }

    /** The header value for {@code body} under {@code secret}. */
    public static String sign(String secret, byte[] body) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            byte[] digest = mac.doFinal(body);
            StringBuilder out = new StringBuilder("sha256=");
            for (byte b : digest) {
                out.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
            }
            return out.toString();
        } catch (GeneralSecurityException e) {
            // Every JDK has HmacSHA256, and it takes keys of any length.
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /** Whether {@code header} signs the exact {@code body} (compared in constant time). */
    public static boolean verify(String secret, byte[] body, String header) {
        if (header == null || header.isEmpty()) {
            return false;
        }
        byte[] expected = sign(secret, body).getBytes(StandardCharsets.UTF_8);
        return MessageDigest.isEqual(expected, header.trim().getBytes(StandardCharsets.UTF_8));
    }
}
