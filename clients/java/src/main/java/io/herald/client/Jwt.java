// Minimal HS256 JSON Web Token encoder, so a backend can mint Herald tokens without a JWT library.
package io.herald.client;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * HS256 JWT signing (RFC 7519 / RFC 7515 compact form). Only signing: verifying tokens is the
 * Herald server's job. Separate from {@link HeraldClient} so that the exact bytes produced for
 * given claims can be tested against a known answer.
 */
public final class Jwt {
    private static final Base64.Encoder BASE64URL = Base64.getUrlEncoder().withoutPadding();

    private Jwt() {
    }

    /**
     * Encodes {@code claims} (in their iteration order: pass a {@code LinkedHashMap}) and signs
     * them with HMAC-SHA256 under the UTF-8 bytes of {@code secret}.
     */
    public static String encodeHs256(Map<String, ?> claims, String secret) {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("alg", "HS256");
        header.put("typ", "JWT");
        // Compact JSON with non-ASCII left as is: the same bytes as the PHP and Python clients.
        String signingInput = base64Url(Json.write(header).getBytes(StandardCharsets.UTF_8))
                + "." + base64Url(Json.write(claims).getBytes(StandardCharsets.UTF_8));
        return signingInput + "." + base64Url(hmacSha256(secret, signingInput));
    }

    /** Base64url without padding, as JWT requires. */
    public static String base64Url(byte[] bytes) {
        return BASE64URL.encodeToString(bytes);
    }

    private static byte[] hmacSha256(String secret, String data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return mac.doFinal(data.getBytes(StandardCharsets.US_ASCII));
        } catch (GeneralSecurityException e) {
            // Every JDK must provide HmacSHA256, so this cannot happen on a conforming runtime.
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }
}
