//! Where Redis is: parsing `redis://[[user]:password@]host[:port][/db]`.
//!
//! The database number is accepted and ignored: pub/sub channels span every database.
//! `rediss://` (TLS) and `unix://` are refused with a clear message.

use std::fmt;

/// Redis's default port.
pub const DEFAULT_PORT: u16 = 6379;

/// A Redis server address with optional credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// ACL user name (Redis 6+), if any.
    pub username: Option<String>,
    /// Password for `AUTH`, if any.
    pub password: Option<String>,
}

impl fmt::Display for Address {
    /// `host:port`, never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl Address {
    /// Parses a `redis://` URL.
    pub fn parse(url: &str) -> Result<Address, String> {
        let rest = if let Some(rest) = url.strip_prefix("redis://") {
            rest
        } else if url.starts_with("rediss://") {
            return Err("rediss:// (TLS) is not supported; reach Redis through a TLS tunnel and use redis://".into());
        } else {
            return Err(format!(
                "{url:?} is not a redis:// URL (e.g. redis://127.0.0.1:6379)"
            ));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (
                    Some(decode(user)?).filter(|u| !u.is_empty()),
                    Some(decode(password)?),
                ),
                None => (Some(decode(info)?).filter(|u| !u.is_empty()), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("unclosed [ in Redis URL host {hostport:?}"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => {
                    return Err(format!(
                        "unexpected {after:?} after the host in {hostport:?}"
                    ))
                }
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(format!("Redis URL {url:?} names no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("invalid port {port:?} in Redis URL"))?,
        };
        Ok(Address {
            host: host.to_string(),
            port,
            username,
            password,
        })
    }
}

/// Percent-decoding of URL user info.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "invalid %-escape in Redis URL credentials".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "Redis URL credentials are not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Address {
        Address::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn parses_hosts_ports_and_credentials() {
        let a = parse("redis://127.0.0.1:6380");
        assert_eq!(
            (a.host.as_str(), a.port, a.username, a.password),
            ("127.0.0.1", 6380, None, None)
        );
        assert_eq!(parse("redis://cache").port, DEFAULT_PORT);
        assert_eq!(parse("redis://cache/3").host, "cache");
        let a = parse("redis://:s%40cret@cache:7000/0");
        assert_eq!((a.username, a.password.as_deref()), (None, Some("s@cret")));
        let a = parse("redis://herald:pw@cache");
        assert_eq!(
            (a.username.as_deref(), a.password.as_deref()),
            (Some("herald"), Some("pw"))
        );
        let a = parse("redis://[::1]:6390");
        assert_eq!((a.host.as_str(), a.port), ("::1", 6390));
        assert_eq!(a.to_string(), "[::1]:6390");
        assert_eq!(parse("redis://u:secret@h:1").to_string(), "h:1");
        assert!(!format!("{:?}", parse("redis://u:secret@h:1")).contains("secret"));
    }

    #[test]
    fn refuses_what_it_cannot_reach_with_reasons() {
        for (url, reason) in [
            ("rediss://h", "TLS"),
            ("http://h", "not a redis:// URL"),
            ("redis://", "names no host"),
            ("redis://h:0", "invalid port"),
            ("redis://h:99999", "invalid port"),
            ("redis://[::1", "unclosed"),
            ("redis://:%zz@h", "%-escape"),
        ] {
            let error = Address::parse(url).unwrap_err();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
