//! Tokens: HS256 minting for `POST /v1/tokens`, and verification for `ident` of HS256 tokens
//! (shared secret) and RS256 / ES256 / EdDSA tokens (public keys from a PEM or JWKS file), plus
//! channel grants.
//!
//! The algorithm a token may use is pinned by the key that checks it: the shared secret checks
//! only HS256, an RSA key only RS256, a P-256 key only ES256, an Ed25519 key only EdDSA. So an
//! `alg: none` token, or an HS256 token "signed" with a public key as its secret, never passes.

use crate::protocol::error::{ErrorCode, HeraldError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock skew tolerated when checking `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 5;
/// Longest token lifetime accepted (and minted) unless configured: 30 days.
pub const DEFAULT_MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// Shortest HS256 secret accepted, in bytes: a shorter one can be guessed offline from any
/// token it signed.
pub const MIN_SECRET_BYTES: usize = 32;

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
    /// Glob patterns of channels the user may publish to from a connection (client publish),
    /// besides the server's `client_publish` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
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

/// Checks an HS256 secret is long enough; says how to make a good one.
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() >= MIN_SECRET_BYTES {
        return Ok(());
    }
    Err(format!(
        "the JWT secret is {} bytes; it must be at least {MIN_SECRET_BYTES}, or anyone holding \
         one token can guess it offline and mint their own. Make one with \
         `openssl rand -base64 32`",
        secret.len()
    ))
}

/// Signs `claims` with `secret` (HS256).
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, HeraldError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(HeraldError::internal)
}

/// Checks an HS256 token's signature, `exp` and `nbf` with `secret` and the default lifetime
/// limit, and returns the claims.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, HeraldError> {
    TokenKeys::new(Some(secret), DEFAULT_MAX_TTL_SECS).verify(token)
}

/// A public key and the one algorithm it checks.
#[derive(Clone)]
struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Clone)]
struct Keys {
    secret: Option<DecodingKey>,
    public: Vec<PublicKey>,
    max_ttl_secs: u64,
}

/// The keys that check `ident` tokens: the shared HS256 secret and/or public keys. Cheap to
/// clone.
#[derive(Clone)]
pub struct TokenKeys {
    keys: Arc<Keys>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        let public: Vec<String> = self
            .keys
            .public
            .iter()
            .map(|k| format!("{:?}/{}", k.algorithm, k.kid.as_deref().unwrap_or("-")))
            .collect();
        f.debug_struct("TokenKeys")
            .field("hs256", &self.keys.secret.is_some())
            .field("public", &public)
            .field("max_ttl_secs", &self.keys.max_ttl_secs)
            .finish()
    }
}

fn unauthorized(message: impl Into<String>) -> HeraldError {
    HeraldError::new(ErrorCode::Unauthorized, message)
}

impl TokenKeys {
    /// Checks HS256 tokens with `secret` (none: HS256 is refused), and refuses tokens whose
    /// `exp` is more than `max_ttl_secs` away.
    pub fn new(secret: Option<&[u8]>, max_ttl_secs: u64) -> Self {
        TokenKeys {
            keys: Arc::new(Keys {
                secret: secret.map(DecodingKey::from_secret),
                public: Vec::new(),
                max_ttl_secs,
            }),
        }
    }

    /// Also checks tokens with the public key in `pem` (RSA: RS256, P-256: ES256, Ed25519:
    /// EdDSA).
    pub fn with_public_pem(self, pem: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PRIVATE KEY-----") {
            return Err("this is a private key; give Herald only the public half \
                        (`openssl pkey -in key.pem -pubout`)"
                .into());
        }
        let (algorithm, key) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (Algorithm::RS256, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, key)
        } else {
            return Err("not a PEM public key of type RSA, EC P-256 or Ed25519".into());
        };
        Ok(self.with_public(PublicKey {
            kid: None,
            algorithm,
            key,
        }))
    }

    /// Also checks tokens with the keys of a JWKS document (`{"keys":[...]}`); a token's `kid`
    /// picks the key. Symmetric keys and keys for encryption are refused.
    pub fn with_jwks(mut self, json: &str) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        if set.keys.is_empty() {
            return Err("the JWKS document has no keys".into());
        }
        for (i, jwk) in set.keys.iter().enumerate() {
            let name = match &jwk.common.key_id {
                Some(kid) => format!("key {kid:?}"),
                None => format!("key #{}", i + 1),
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                return Err(format!(
                    "{name} is for encryption (`use: enc`), not signatures"
                ));
            }
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                AlgorithmParameters::OctetKey(_) => {
                    return Err(format!(
                        "{name} is a symmetric key; put shared secrets in --jwt-secret"
                    ))
                }
                _ => {
                    return Err(format!(
                        "{name}: only RSA, EC P-256 and Ed25519 keys are accepted"
                    ))
                }
            };
            let declared = jwk.common.key_algorithm;
            let pinned = match algorithm {
                Algorithm::RS256 => KeyAlgorithm::RS256,
                Algorithm::ES256 => KeyAlgorithm::ES256,
                _ => KeyAlgorithm::EdDSA,
            };
            if declared.is_some_and(|alg| alg != pinned) {
                return Err(format!(
                    "{name} declares `alg` {declared:?}; Herald accepts {pinned:?} for this key type"
                ));
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("{name}: {e}"))?;
            self = self.with_public(PublicKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        Ok(self)
    }

    fn with_public(self, key: PublicKey) -> Self {
        let mut keys = Arc::unwrap_or_clone(self.keys);
        keys.public.push(key);
        TokenKeys {
            keys: Arc::new(keys),
        }
    }

    /// The same keys, plus HS256 checked with `secret`.
    pub fn with_secret(self, secret: &[u8]) -> Self {
        let mut keys = Arc::unwrap_or_clone(self.keys);
        keys.secret = Some(DecodingKey::from_secret(secret));
        TokenKeys {
            keys: Arc::new(keys),
        }
    }

    /// Whether no key at all is configured (every token would be refused).
    pub fn is_empty(&self) -> bool {
        self.keys.secret.is_none() && self.keys.public.is_empty()
    }

    /// Checks signature (with the key the token's `alg` and `kid` name), `exp`, `nbf` and the
    /// lifetime limit, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, HeraldError> {
        let header = decode_header(token).map_err(|e| {
            HeraldError::refused_input(ErrorCode::Unauthorized, "token is not a valid JWT", e)
        })?;
        let candidates: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => match &self.keys.secret {
                Some(secret) => vec![secret],
                None => {
                    return Err(unauthorized(
                        "HS256 tokens are not accepted here (no --jwt-secret); \
                         sign with the configured public key's private half",
                    ))
                }
            },
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA => self
                .keys
                .public
                .iter()
                .filter(|k| k.algorithm == header.alg)
                .filter(|k| match (&header.kid, &k.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    _ => true,
                })
                .map(|k| &k.key)
                .collect(),
            other => {
                return Err(unauthorized(format!(
                    "token algorithm {other:?} is not accepted; use HS256, RS256, ES256 or EdDSA"
                )))
            }
        };
        if candidates.is_empty() {
            return Err(unauthorized(format!(
                "no key configured for {:?} tokens{}",
                header.alg,
                header
                    .kid
                    .as_deref()
                    .map(|kid| format!(" with `kid` {kid:?}"))
                    .unwrap_or_default()
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let mut refused = unauthorized("token signature invalid");
        let mut claims = None;
        for key in candidates {
            match decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => refused = why(&e, header.alg),
            }
        }
        let claims = claims.ok_or(refused)?;
        let latest = now_secs() + self.keys.max_ttl_secs + LEEWAY_SECS;
        if claims.exp > latest {
            return Err(unauthorized(format!(
                "token `exp` is more than {} s from now, the longest lifetime this server \
                 accepts (max_token_ttl_secs); mint tokens that expire sooner",
                self.keys.max_ttl_secs
            )));
        }
        crate::names::check_name("user", &claims.sub)
            .map_err(|e| unauthorized(format!("token `sub`: {}", e.message)))?;
        Ok(claims)
    }
}

/// Why a token was refused, in words a backend developer can act on.
fn why(e: &jsonwebtoken::errors::Error, algorithm: Algorithm) -> HeraldError {
    match e.kind() {
        ErrorKind::ExpiredSignature => unauthorized("token expired; get a fresh one"),
        ErrorKind::ImmatureSignature => {
            unauthorized("token not valid yet: its `nbf` is in the future")
        }
        ErrorKind::InvalidSignature if algorithm == Algorithm::HS256 => {
            unauthorized("token signature invalid: it was not signed with this server's secret")
        }
        ErrorKind::InvalidSignature => unauthorized(
            "token signature invalid: it was not signed with a key this server is configured with",
        ),
        ErrorKind::MissingRequiredClaim(c) => unauthorized(format!("token lacks the `{c}` claim")),
        _ => HeraldError::refused_input(ErrorCode::Unauthorized, "token is not a valid JWT", e),
    }
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

/// Whether a channel needs a grant to be joined: `private-` channels, and every channel of a
/// Pusher app (its gateway grants each one after checking the app's own authorization).
pub fn is_private(channel: &str) -> bool {
    channel.starts_with("private-") || channel.starts_with(crate::pusher::NAMESPACE)
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
            publish: Vec::new(),
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
    fn weak_secrets_are_refused_with_a_recipe() {
        let e = check_secret(b"change-me").unwrap_err();
        assert!(e.contains("openssl rand -base64 32"), "{e}");
        assert!(check_secret(&[b'x'; MIN_SECRET_BYTES]).is_ok());
    }

    /// `nbf` used to be ignored: a token meant for later was accepted at once.
    #[test]
    fn not_before_is_honoured() {
        #[derive(Serialize)]
        struct WithNbf {
            sub: &'static str,
            exp: u64,
            nbf: u64,
        }
        let sign = |nbf| {
            let claims = WithNbf {
                sub: "alice",
                exp: now_secs() + 3600,
                nbf,
            };
            encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).unwrap()
        };
        let e = verify(b"k", &sign(now_secs() + 600)).unwrap_err();
        assert!(e.message.contains("nbf"), "{e}");
        // Within the leeway, and in the past: fine.
        assert!(verify(b"k", &sign(now_secs() + 2)).is_ok());
        assert!(verify(b"k", &sign(now_secs() - 60)).is_ok());
    }

    /// A token valid for a century used to be accepted.
    #[test]
    fn absurd_expiry_is_refused() {
        let keys = TokenKeys::new(Some(b"k"), 3600);
        let far = mint(b"k", &claims(now_secs() + 100 * 365 * 24 * 3600)).unwrap();
        let e = keys.verify(&far).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthorized);
        assert!(e.message.contains("max_token_ttl_secs"), "{e}");
        let near = mint(b"k", &claims(now_secs() + 3600)).unwrap();
        assert!(keys.verify(&near).is_ok());
    }

    /// Runs the `openssl` CLI with `args`, feeding `input`; returns its stdout.
    fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("these tests need the `openssl` command line tool");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl {args:?} failed");
        out.stdout
    }

    /// A fresh key pair: (private PEM, public PEM, public key DER).
    fn key_pair(genpkey: &[&str]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let private = openssl(&[&["genpkey"][..], genpkey].concat(), b"");
        let public = openssl(&["pkey", "-pubout"], &private);
        let der = openssl(&["pkey", "-pubin", "-outform", "DER"], &public);
        (private, public, der)
    }

    fn rsa() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        key_pair(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    }
    fn p256() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        key_pair(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    }
    fn ed25519() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        key_pair(&["-algorithm", "ed25519"])
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        encode(&header, &claims(now_secs() + 60), key).unwrap()
    }

    #[test]
    fn asymmetric_tokens_from_pem_keys() {
        let (private, public, _) = rsa();
        let keys = TokenKeys::new(Some(b"k"), DEFAULT_MAX_TTL_SECS)
            .with_public_pem(&public)
            .unwrap();
        let rs256 = sign(
            Algorithm::RS256,
            None,
            &EncodingKey::from_rsa_pem(&private).unwrap(),
        );
        assert_eq!(keys.verify(&rs256).unwrap().sub, "alice");
        // HS256 with the shared secret keeps working alongside.
        assert!(keys
            .verify(&mint(b"k", &claims(now_secs() + 60)).unwrap())
            .is_ok());
        // Another RSA key's token is refused.
        let (other, _, _) = rsa();
        let forged = sign(
            Algorithm::RS256,
            None,
            &EncodingKey::from_rsa_pem(&other).unwrap(),
        );
        assert!(keys
            .verify(&forged)
            .unwrap_err()
            .message
            .contains("signature"));

        let (private, public, _) = p256();
        let keys = TokenKeys::new(None, DEFAULT_MAX_TTL_SECS)
            .with_public_pem(&public)
            .unwrap();
        let es256 = sign(
            Algorithm::ES256,
            None,
            &EncodingKey::from_ec_pem(&private).unwrap(),
        );
        assert!(keys.verify(&es256).is_ok());
        // Without a secret, HS256 is refused outright.
        let hs = mint(b"k", &claims(now_secs() + 60)).unwrap();
        assert!(keys.verify(&hs).unwrap_err().message.contains("HS256"));

        let (private, public, _) = ed25519();
        let keys = TokenKeys::new(None, DEFAULT_MAX_TTL_SECS)
            .with_public_pem(&public)
            .unwrap();
        let eddsa = sign(
            Algorithm::EdDSA,
            None,
            &EncodingKey::from_ed_pem(&private).unwrap(),
        );
        assert!(keys.verify(&eddsa).is_ok());
        // A private key given by mistake is refused with advice.
        let e = TokenKeys::new(None, 60)
            .with_public_pem(&private)
            .err()
            .unwrap();
        assert!(e.contains("-pubout"), "{e}");
    }

    /// The classic confusions: `alg: none`, and an HS256 token whose "secret" is the server's
    /// public key (which an attacker knows).
    #[test]
    fn algorithm_confusion_is_refused() {
        let (_, public, _) = rsa();
        for secret in [None, Some(&b"a-real-secret-of-thirty-two-bytes"[..])] {
            let keys = TokenKeys::new(secret, DEFAULT_MAX_TTL_SECS)
                .with_public_pem(&public)
                .unwrap();
            let confused = mint(&public, &claims(now_secs() + 60)).unwrap();
            let e = keys.verify(&confused).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized, "{e}");
        }
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&format!(r#"{{"sub":"alice","exp":{}}}"#, now_secs() + 60))
        );
        let keys = TokenKeys::new(Some(b"k"), DEFAULT_MAX_TTL_SECS)
            .with_public_pem(&public)
            .unwrap();
        assert_eq!(
            keys.verify(&none).unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn jwks_keys_are_chosen_by_kid() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let (ed_private, _, ed_der) = ed25519();
        let (ec_private, _, ec_der) = p256();
        // The raw public key ends the DER: 32 bytes for Ed25519, 0x04 ‖ x ‖ y for P-256.
        let ed_x = &ed_der[ed_der.len() - 32..];
        let ec_xy = &ec_der[ec_der.len() - 64..];
        let jwks = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64(ed_x)},
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig",
             "x": b64(&ec_xy[..32]), "y": b64(&ec_xy[32..])},
        ]});
        let keys = TokenKeys::new(None, DEFAULT_MAX_TTL_SECS)
            .with_jwks(&jwks.to_string())
            .unwrap();
        let ed_key = EncodingKey::from_ed_pem(&ed_private).unwrap();
        let ec_key = EncodingKey::from_ec_pem(&ec_private).unwrap();
        assert!(keys
            .verify(&sign(Algorithm::EdDSA, Some("ed-1"), &ed_key))
            .is_ok());
        assert!(keys
            .verify(&sign(Algorithm::ES256, Some("ec-1"), &ec_key))
            .is_ok());
        let e = keys
            .verify(&sign(Algorithm::EdDSA, Some("ed-2"), &ed_key))
            .unwrap_err();
        assert!(e.message.contains("ed-2"), "{e}");
        let symmetric = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        let e = TokenKeys::new(None, 60).with_jwks(symmetric).err().unwrap();
        assert!(e.contains("symmetric"), "{e}");
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
