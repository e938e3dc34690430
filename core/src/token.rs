//! HS256 JWTs: minting for `POST /v1/tokens` and verification for `ident`, plus channel grants.

use crate::protocol::error::{ErrorCode, HeraldError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock skew tolerated when checking `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// What a Herald token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Glob patterns of channels the user may join beyond public ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Set on one-time tokens: void after their first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Marks a one-time token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs `claims` with `secret`.
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, HeraldError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(HeraldError::internal)
}

/// Checks signature and expiry and returns the claims.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, HeraldError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let unauthorized = |m: &str| HeraldError::new(ErrorCode::Unauthorized, m);
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation).map_err(
        |e| match e.kind() {
            ErrorKind::ExpiredSignature => unauthorized("token expired; get a fresh one"),
            ErrorKind::InvalidSignature => {
                unauthorized("token signature invalid: it was not signed with this server's secret")
            }
            ErrorKind::InvalidAlgorithm => unauthorized("token must be signed with HS256"),
            ErrorKind::MissingRequiredClaim(c) => {
                unauthorized(&format!("token lacks the `{c}` claim"))
            }
            _ => HeraldError::refused_input(ErrorCode::Unauthorized, "token is not a valid JWT", e),
        },
    )?;
    crate::names::check_name("user", &data.claims.sub)
        .map_err(|e| unauthorized(&format!("token `sub`: {}", e.message)))?;
    Ok(data.claims)
}

/// Whether `channel` matches one of the glob `patterns` (`*` matches any run of characters).
pub fn grants_allow(patterns: &[String], channel: &str) -> bool {
    patterns
        .iter()
        .any(|p| glob_match(p.as_bytes(), channel.as_bytes()))
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with single backtrack point: linear for the patterns grants use.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether a channel needs a grant to be joined.
pub fn is_private(channel: &str) -> bool {
    channel.starts_with("private-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            exp,
            iat: None,
            channels: vec!["private-*".into()],
            jti: None,
            once: false,
        }
    }

    #[test]
    fn minted_tokens_verify() {
        let token = mint(b"k", &claims(now_secs() + 60)).unwrap();
        assert_eq!(verify(b"k", &token).unwrap().sub, "alice");
    }

    #[test]
    fn bad_tokens_say_why() {
        let expired = mint(b"k", &claims(now_secs() - 3600)).unwrap();
        assert!(verify(b"k", &expired)
            .unwrap_err()
            .message
            .contains("expired"));
        let token = mint(b"k", &claims(now_secs() + 60)).unwrap();
        assert!(verify(b"other", &token)
            .unwrap_err()
            .message
            .contains("signature"));
        let e = verify(b"k", "garbage").unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthorized);
    }

    #[test]
    fn errors_do_not_echo_long_claims() {
        // Found by the token fuzz target: serde quoted a wrong-typed claim whole.
        let claims = serde_json::json!({"sub": "a", "exp": "x".repeat(5000)});
        let key = EncodingKey::from_secret(b"k");
        let token = encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        let e = verify(b"k", &token).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthorized);
        assert!(
            e.message.len() < 300,
            "{} bytes: {:.100}",
            e.message.len(),
            e.message
        );
    }

    #[test]
    fn grants_are_globs() {
        let g = vec!["private-team-*".to_string(), "exact".to_string()];
        assert!(grants_allow(&g, "private-team-1"));
        assert!(grants_allow(&g, "exact"));
        assert!(!grants_allow(&g, "private-other"));
        assert!(!grants_allow(&g, "exactly"));
        assert!(grants_allow(&["*".to_string()], "anything"));
        assert!(grants_allow(&["a*b*c".to_string()], "axxbyyc"));
        assert!(!grants_allow(&["a*b*c".to_string()], "axxbyy"));
    }
}
