//! Logging in to a secured NATS: user and password (flags or `user:pass@` in the URL), a
//! token, an NKey seed file, a credentials file, and TLS with a private CA and client
//! certificates; every shown URL redacted, every failure naming the credential but never its
//! value.
//!
//! async-nats ignores credentials written in server URLs, so they are taken out of the URL here
//! and handed to it as options; the URLs it keeps (and may log) carry no secret.

use anyhow::{bail, Context};
use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};
use percent_encoding::percent_decode_str;
use std::fmt;
use std::path::{Path, PathBuf};

/// How Herald proves itself to NATS and checks NATS's certificate. Each field is a flag, a
/// `HERALD_*` variable and a TOML key (see `config.rs`); at most one credential may be set.
#[derive(Clone, Default)]
pub struct NatsAuth {
    /// User name, with `password`.
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
    /// Authorization token.
    pub token: Option<String>,
    /// File holding an NKey seed (`SU...`).
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file (user JWT and NKey seed) for decentralized JWT auth.
    pub creds_file: Option<PathBuf>,
    /// PEM file of the CA(s) that signed the NATS servers' certificates; implies TLS.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// Secrets stay out of `{:?}`: settings may be debug-printed.
impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { Some("***") } else { None };
        f.debug_struct("NatsAuth")
            .field("user", &self.user)
            .field("password", &hidden(self.password.is_some()))
            .field("token", &hidden(self.token.is_some()))
            .field("nkey_file", &self.nkey_file)
            .field("creds_file", &self.creds_file)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// `url` (one server or a comma-separated list) fit to show: `user:pass@` becomes
/// `user:***@` and a token `tok@` becomes `***@`.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let (scheme, rest) = match server.find("://") {
                Some(at) => server.split_at(at + 3),
                None => ("", server),
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => {
                    let userinfo = &rest[..at];
                    let shown = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => "***".to_string(),
                    };
                    format!("{scheme}{shown}{}", &rest[at..])
                }
                None => server.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Credentials found in the server URLs.
#[derive(PartialEq, Eq)]
enum UrlCredentials {
    UserPassword(String, String),
    Token(String),
}

/// The servers of `url` without their credentials, and those credentials (every server that
/// carries some must carry the same).
fn servers(url: &str) -> anyhow::Result<(Vec<ServerAddr>, Option<UrlCredentials>)> {
    let mut addresses = Vec::new();
    let mut found: Option<UrlCredentials> = None;
    for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let shown = redact(server);
        let with_scheme = if server.contains("://") {
            server.to_string()
        } else {
            format!("nats://{server}")
        };
        let mut parsed = url::Url::parse(&with_scheme)
            .map_err(|e| anyhow::anyhow!("bad NATS server URL {shown}: {e}"))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, Some(password)) => {
                Some(UrlCredentials::UserPassword(decode(user), decode(password)))
            }
            (token, None) => Some(UrlCredentials::Token(decode(token))),
        };
        if let Some(credentials) = credentials {
            if found.as_ref().is_some_and(|f| *f != credentials) {
                bail!("the servers in --nats carry different credentials; give them once with --nats-user/--nats-password or --nats-token");
            }
            found = Some(credentials);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        addresses.push(
            ServerAddr::from_url(parsed)
                .map_err(|e| anyhow::anyhow!("bad NATS server URL {shown}: {e}"))?,
        );
    }
    if addresses.is_empty() {
        bail!("--nats names no server");
    }
    Ok((addresses, found))
}

fn check_readable(path: &Path, flag: &str) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .map(drop)
        .with_context(|| format!("cannot read {flag} {}", path.display()))
}

/// The NKey seed in `path`: the first line that is a valid seed (nsc's files wrap it in a
/// header and footer). Returns the seed and its public key.
fn read_nkey_seed(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --nats-nkey {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with('S'))
        .find_map(|line| {
            let pair = nkeys::KeyPair::from_seed(line).ok()?;
            Some((line.to_string(), pair.public_key()))
        })
        .with_context(|| {
            format!(
                "--nats-nkey {} holds no valid NKey seed (a line starting with SU, as `nk -gen user` writes)",
                path.display()
            )
        })
}

/// Connects to the NATS `url` as `name` with `auth` on top of `options`; errors say what to
/// fix and name the credential used, never its value.
pub async fn connect(
    url: &str,
    auth: &NatsAuth,
    options: ConnectOptions,
) -> anyhow::Result<async_nats::Client> {
    let shown = redact(url);
    let (addresses, in_url) = servers(url)?;
    let mut options = options;
    let mut used = Vec::new();
    let user_password = match (&auth.user, &auth.password, in_url) {
        (Some(user), Some(password), _) => Some((user.clone(), password.clone())),
        (Some(_), None, _) | (None, Some(_), _) => {
            bail!("--nats-user and --nats-password go together")
        }
        (None, None, Some(UrlCredentials::UserPassword(user, password))) => Some((user, password)),
        (None, None, Some(UrlCredentials::Token(token))) => {
            if auth.token.is_some() {
                bail!("a NATS token is given both in the --nats URL and --nats-token; keep one");
            }
            used.push("the token in the --nats URL".to_string());
            options = options.token(token);
            None
        }
        (None, None, None) => None,
    };
    if let Some((user, password)) = user_password {
        used.push(format!("user {user:?} and its password"));
        options = options.user_and_password(user, password);
    }
    if let Some(token) = &auth.token {
        used.push("the token of --nats-token".to_string());
        options = options.token(token.clone());
    }
    if let Some(path) = &auth.nkey_file {
        let (seed, public) = read_nkey_seed(path)?;
        used.push(format!("NKey {public} from {}", path.display()));
        options = options.nkey(seed);
    }
    if let Some(path) = &auth.creds_file {
        used.push(format!("credentials file {}", path.display()));
        options = options
            .credentials_file(path)
            .await
            .with_context(|| format!("cannot use --nats-creds {}", path.display()))?;
    }
    if used.len() > 1 {
        bail!(
            "choose one way to log in to NATS, not {}",
            used.join(" and ")
        );
    }
    if let Some(ca) = &auth.tls_ca {
        check_readable(ca, "--nats-tls-ca")?;
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&auth.tls_cert, &auth.tls_key) {
        (Some(cert), Some(key)) => {
            check_readable(cert, "--nats-tls-cert")?;
            check_readable(key, "--nats-tls-key")?;
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        (None, None) => {}
        _ => bail!("--nats-tls-cert and --nats-tls-key go together"),
    }
    let credential = used.pop().unwrap_or_else(|| "no credentials".to_string());
    options
        .connect(addresses)
        .await
        .map_err(|e| explain(&e, &shown, &credential))
}

/// What to tell the operator when connecting to `shown` with `credential` failed.
fn explain(e: &async_nats::ConnectError, shown: &str, credential: &str) -> anyhow::Error {
    let tls = e.kind() == ConnectErrorKind::Tls
        // rustls refusing the server's certificate comes back as an I/O error.
        || (e.kind() == ConnectErrorKind::Io && e.to_string().contains("certificate"));
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
            anyhow::anyhow!(
                "NATS at {shown} refused to log in with {credential}: {e}; check the \
                 credential (--nats-user/--nats-password, --nats-token, --nats-nkey, \
                 --nats-creds) against the server's authorization"
            )
        }
        _ if tls => anyhow::anyhow!(
            "TLS with NATS at {shown} failed: {e}; check --nats-tls-ca (the CA that signed \
             the server's certificate, whose names must include the host in --nats) and \
             --nats-tls-cert/--nats-tls-key"
        ),
        _ => anyhow::anyhow!("cannot reach NATS at {shown}: {e}"),
    }
}

/// `herald nkey`: makes a user NKey, writes its seed to `path` (a new file only its owner can
/// read) and returns the public key, which goes in the NATS server's configuration.
pub fn new_nkey(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    let pair = nkeys::KeyPair::new_user();
    let seed = pair
        .seed()
        .map_err(|e| anyhow::anyhow!("cannot make an NKey: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    writeln!(file, "{seed}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(pair.public_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            redact("nats://gw:s3cret@a:4222,tls://tok@b:4222/x,c:4222"),
            "nats://gw:***@a:4222,tls://***@b:4222/x,c:4222"
        );
        assert_eq!(redact("u:p@host"), "u:***@host");
        assert_eq!(redact("nats://host:4222"), "nats://host:4222");
    }

    #[test]
    fn credentials_leave_the_urls_async_nats_keeps() {
        let (servers, found) = servers("nats://gw:p%40ss@a:4222, nats://gw:p%40ss@b:4223").unwrap();
        assert!(found == Some(UrlCredentials::UserPassword("gw".into(), "p@ss".into())));
        assert_eq!(servers.len(), 2);
        assert!(servers.iter().all(|s| !s.has_user_pass()));
        let error = servers_error("nats://a:pw-one@h1,nats://b:pw-two@h2");
        assert!(
            error.contains("different credentials") && !error.contains("pw-"),
            "{error}"
        );
    }

    fn servers_error(url: &str) -> String {
        match servers(url) {
            Ok(_) => panic!("{url} accepted"),
            Err(e) => e.to_string(),
        }
    }
}
