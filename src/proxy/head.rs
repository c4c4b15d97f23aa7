//! The front door's `CONNECT` head, parsed without I/O: the request line,
//! the `host:port` authority (IPv6 in brackets) and `Proxy-Authorization`.
//! Pure, so it can be fuzzed (`parse_connect`).
//!
//! Owns: what a CONNECT target may look like. Must not: authenticate (the
//! caller compares the credential) or decide egress.

use std::net::Ipv6Addr;

/// The most header lines a CONNECT head may carry (400 beyond it).
pub const MAX_HEAD_HEADERS: usize = 64;
/// The longest CONNECT authority: a 253-byte DNS name (or a bracketed IPv6
/// address), `:` and five port digits, plus the two brackets.
pub const MAX_AUTHORITY_BYTES: usize = 253 + 2 + 1 + 5;

/// A parsed `CONNECT host:port` head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectHead {
    /// Lowercase; an IPv6 address without its brackets.
    pub host: String,
    /// Never 0.
    pub port: u16,
    /// The raw `Proxy-Authorization` value, if sent.
    pub proxy_authorization: Option<Vec<u8>>,
}

/// Why a CONNECT head is refused (400); the text is sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadRefusal {
    #[error("malformed CONNECT request")]
    Malformed,
    #[error("not a CONNECT request")]
    NotConnect,
    #[error("CONNECT target longer than {MAX_AUTHORITY_BYTES} bytes")]
    TooLong,
    #[error("CONNECT needs host:port (the port is missing)")]
    MissingPort,
    #[error("CONNECT needs host:port with a port from 1 to 65535")]
    BadPort,
    #[error("CONNECT needs host:port (the host is not a host name or IP address)")]
    BadHost,
}

/// Parses a complete request head (up to and including the blank line).
pub fn parse_connect(head: &[u8]) -> Result<ConnectHead, HeadRefusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEAD_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return Err(HeadRefusal::Malformed),
    }
    if req.method != Some("CONNECT") {
        return Err(HeadRefusal::NotConnect);
    }
    let (host, port) = parse_authority(req.path.unwrap_or(""))?;
    let proxy_authorization = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|h| h.value.to_vec());
    Ok(ConnectHead {
        host,
        port,
        proxy_authorization,
    })
}

/// `host:port` or `[v6]:port` (RFC 9110 authority-form: the port is required).
pub fn parse_authority(target: &str) -> Result<(String, u16), HeadRefusal> {
    if target.len() > MAX_AUTHORITY_BYTES {
        return Err(HeadRefusal::TooLong);
    }
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(HeadRefusal::BadHost)?;
        let addr: Ipv6Addr = v6.parse().map_err(|_| HeadRefusal::BadHost)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => return Err(HeadRefusal::MissingPort),
            None => return Err(HeadRefusal::BadHost),
        };
        (addr.to_string(), port)
    } else {
        let (host, port) = target.rsplit_once(':').ok_or(HeadRefusal::MissingPort)?;
        if !valid_host(host) {
            return Err(HeadRefusal::BadHost);
        }
        (host.trim_end_matches('.').to_ascii_lowercase(), port)
    };
    Ok((host, parse_port(port)?))
}

fn parse_port(port: &str) -> Result<u16, HeadRefusal> {
    if port.is_empty() {
        return Err(HeadRefusal::MissingPort);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadRefusal::BadPort);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(HeadRefusal::BadPort),
        Ok(p) => Ok(p),
    }
}

/// A DNS name or IPv4 address: letters, digits, `-`, `_`, `.`; no empty label.
fn valid_host(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str) -> Vec<u8> {
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes()
    }

    #[test]
    fn a_plain_connect() {
        let h = parse_connect(
            b"CONNECT API.Anthropic.com:443 HTTP/1.1\r\nproxy-authorization: Basic eDp5\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.host, "api.anthropic.com");
        assert_eq!(h.port, 443);
        assert_eq!(h.proxy_authorization.as_deref(), Some(&b"Basic eDp5"[..]));
        assert_eq!(parse_connect(&head("claude.ai:25")).unwrap().port, 25);
        assert_eq!(
            parse_connect(&head("claude.ai.:443")).unwrap().host,
            "claude.ai"
        );
        assert!(parse_connect(&head("x:1"))
            .unwrap()
            .proxy_authorization
            .is_none());
    }

    #[test]
    fn ipv6_in_brackets() {
        let h = parse_connect(&head("[::1]:443")).unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", 443));
        let h = parse_connect(&head("[2001:DB8::1]:8443")).unwrap();
        assert_eq!((h.host.as_str(), h.port), ("2001:db8::1", 8443));
        assert_eq!(parse_authority("[::1]"), Err(HeadRefusal::MissingPort));
        assert_eq!(parse_authority("[::1]443"), Err(HeadRefusal::BadHost));
        assert_eq!(parse_authority("[::1:443"), Err(HeadRefusal::BadHost));
        assert_eq!(parse_authority("[nothost]:443"), Err(HeadRefusal::BadHost));
        assert_eq!(parse_authority("::1:443"), Err(HeadRefusal::BadHost));
    }

    #[test]
    fn bad_ports() {
        assert_eq!(parse_authority("host:0"), Err(HeadRefusal::BadPort));
        assert_eq!(parse_authority("host:65536"), Err(HeadRefusal::BadPort));
        assert_eq!(parse_authority("host:-1"), Err(HeadRefusal::BadPort));
        assert_eq!(parse_authority("host:+443"), Err(HeadRefusal::BadPort));
        assert_eq!(parse_authority("host:44x"), Err(HeadRefusal::BadPort));
        assert_eq!(parse_authority("host:65535"), Ok(("host".into(), 65535)));
        assert_eq!(parse_authority("host"), Err(HeadRefusal::MissingPort));
        assert_eq!(parse_authority("host:"), Err(HeadRefusal::MissingPort));
        assert_eq!(parse_authority(""), Err(HeadRefusal::MissingPort));
    }

    #[test]
    fn bad_hosts() {
        for target in [
            ":443",
            "a..b:443",
            "user@host:443",
            "ho st:443",
            "host/path:443",
            "a:b:443",
            ".:443",
        ] {
            assert!(parse_authority(target).is_err(), "{target}");
        }
        let label = "a".repeat(64);
        assert_eq!(
            parse_authority(&format!("{label}.com:443")),
            Err(HeadRefusal::BadHost)
        );
    }

    #[test]
    fn overlong_authority() {
        let long = format!("{}.com:443", "a.".repeat(130));
        assert!(long.len() > MAX_AUTHORITY_BYTES);
        assert_eq!(parse_connect(&head(&long)), Err(HeadRefusal::TooLong));
        // The longest name that fits is accepted.
        let name = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(name.len(), 253);
        assert!(parse_authority(&format!("{name}:65535")).is_ok());
    }

    #[test]
    fn malformed_heads() {
        assert_eq!(
            parse_connect(b"CONNECT host:443 HTTP/1.1\r\n"),
            Err(HeadRefusal::Malformed)
        );
        assert_eq!(
            parse_connect(b"GET / HTTP/1.1\r\n\r\n"),
            Err(HeadRefusal::NotConnect)
        );
        assert_eq!(parse_connect(b"\r\n\r\n"), Err(HeadRefusal::Malformed));
        let many: String = (0..=MAX_HEAD_HEADERS)
            .map(|i| format!("x{i}: y\r\n"))
            .collect();
        let too_many = format!("CONNECT host:443 HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_connect(too_many.as_bytes()),
            Err(HeadRefusal::Malformed)
        );
    }

    #[test]
    fn non_utf8_is_refused_without_panicking() {
        let mut h = b"CONNECT ho".to_vec();
        h.extend_from_slice(&[0xff, 0xfe]);
        h.extend_from_slice(b"st:443 HTTP/1.1\r\n\r\n");
        assert!(parse_connect(&h).is_err());
        let mut h = b"CONNECT host:443 HTTP/1.1\r\nProxy-Authorization: Basic ".to_vec();
        h.extend_from_slice(&[0xc3, 0x28]);
        h.extend_from_slice(b"\r\n\r\n");
        // A non-UTF-8 credential is kept raw; the caller refuses it as a credential.
        if let Ok(parsed) = parse_connect(&h) {
            assert!(parsed.proxy_authorization.unwrap().ends_with(&[0xc3, 0x28]));
        }
    }
}
