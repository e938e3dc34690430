//! What a channel, event or user name may be, and how a name becomes one KV key token.

use crate::protocol::error::HeraldError;

/// Longest name Herald accepts, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` is 1–128 characters of letters, digits and `_-.:@`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
}

/// Checks a name, saying which kind of name was wrong (`what` is "channel", "event", "user").
pub fn check_name(what: &str, name: &str) -> Result<(), HeraldError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(HeraldError::bad_request(format!(
            "invalid {what} name {:?}: use 1-{MAX_NAME_LEN} characters of letters, digits and _-.:@",
            crate::protocol::excerpt(name)
        )))
    }
}

/// Turns a valid name into one KV key token.
///
/// NATS KV keys allow `[-/_=.A-Za-z0-9]` and use `.` to separate tokens, so the characters a
/// name may have that a key token may not (`.`, `:`, `@`) and the escape character `=` itself
/// are written as `=XX` hex. The mapping is reversible ([`key_token_decode`]).
pub fn key_token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'.' | b':' | b'@' | b'=' => out.push_str(&format!("={b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

/// Reverses [`key_token`]; `None` when the token is not one it produced.
pub fn key_token_decode(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_alphabet() {
        assert!(is_valid_name("chat"));
        assert!(is_valid_name("MESSAGE:NEW"));
        assert!(is_valid_name("a.b-c_d@e"));
        assert!(is_valid_name(&"x".repeat(128)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(129)));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name("slash/no"));
        assert!(!is_valid_name("star*"));
        assert!(!is_valid_name("ünïcode"));
    }

    #[test]
    fn key_tokens_round_trip_and_hold_no_separator() {
        for name in [
            "chat",
            "a.b",
            "user@example.com",
            "x:y",
            "=3A",
            "private-room",
        ] {
            let token = key_token(name);
            assert!(!token.contains('.'), "{token}");
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')));
            assert_eq!(key_token_decode(&token).as_deref(), Some(name));
        }
        assert_eq!(key_token_decode("=Z"), None);
    }
}
