//! Token verification, as `ident` runs it: any string, and any claims JSON signed with the
//! right secret (so the fuzzer reaches the claim checks, not only the signature check), never
//! panics; a refusal is `unauthorized` with a bounded message; an accepted token names a valid
//! user. Channel grants (glob patterns) match any pattern against any channel without panicking.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use herald_core::token::{grants_allow, verify};
use herald_core::ErrorCode;
use herald_fuzz::check_error;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &[u8] = b"fuzz-secret";

/// An HS256 JWT over `claims` (any bytes), signed with [`SECRET`].
fn signed(claims: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("HMAC takes any key");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn check(token: &str) {
    match verify(SECRET, token) {
        Ok(claims) => {
            assert!(
                herald_core::names::is_valid_name(&claims.sub),
                "{:?}",
                claims.sub
            );
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::Unauthorized, "{e}");
            check_error(&e);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check(&String::from_utf8_lossy(rest)),
        1 => check(&signed(rest)),
        _ => {
            // `patterns\0channel`: patterns one per line.
            let text = String::from_utf8_lossy(rest);
            let (patterns, channel) = text.split_once('\0').unwrap_or((&text, "chat"));
            let patterns: Vec<String> = patterns.lines().map(str::to_owned).collect();
            let allowed = grants_allow(&patterns, channel);
            if patterns.iter().any(|p| p == channel || p == "*") {
                assert!(allowed, "{patterns:?} must allow {channel:?}");
            }
        }
    }
});
