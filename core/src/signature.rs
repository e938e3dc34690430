//! Signatures of the HTTP calls Herald makes to backends (RPC, publish hook, webhooks):
//! `X-Herald-Signature: sha256=<hex HMAC-SHA256 of the body under the route's secret>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest secret a backend endpoint (RPC route, publish hook, webhook) accepts.
pub const MIN_SECRET_BYTES: usize = 16;

/// Checks a backend endpoint's `url` and `secret` as configured; the message names the key
/// to fix.
pub fn check_endpoint(url: &str, secret: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`url` {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`url` {url:?} must be http:// or https://"));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "`secret` must be at least {MIN_SECRET_BYTES} bytes (`openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

/// The header carrying the signature.
pub const HEADER: &str = "X-Herald-Signature";

/// The header value for `body` under `secret`: `sha256=<lowercase hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

/// HMAC-SHA256 of `body` under `secret`, in lowercase hex (what Pusher's signatures are too).
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Whether `header` is the signature of `body` under `secret`, compared in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = sign(secret, body);
    expected.as_bytes().ct_eq(header.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_refuses_another_body_or_secret() {
        let header = sign(b"s3cret", b"{}");
        assert!(verify(b"s3cret", b"{}", &header));
        assert!(!verify(b"s3cret", b"{ }", &header));
        assert!(!verify(b"other", b"{}", &header));
        assert!(!verify(b"s3cret", b"{}", "sha256=00"));
    }
}
