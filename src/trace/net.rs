//! Socket addresses and DNS queries, decoded from the bytes a tracee passed
//! to `connect`, `bind` or `send*`. Pure functions over byte slices, so they
//! are tested directly (and safe against hostile input: every length is
//! checked).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const AF_NETLINK: u16 = 16;

/// A decoded `struct sockaddr`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SockAddr {
    Inet { ip: IpAddr, port: u16 },
    Unix { path: String },
    Abstract { name: String },
    UnixUnnamed,
    Netlink,
    Other { family: u16 },
}

impl SockAddr {
    /// Decodes the first `bytes.len()` bytes of a sockaddr.
    pub fn decode(bytes: &[u8]) -> Option<SockAddr> {
        let family = u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?);
        Some(match family {
            AF_INET => {
                let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
                let ip: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
                SockAddr::Inet {
                    ip: IpAddr::V4(Ipv4Addr::from(ip)),
                    port,
                }
            }
            AF_INET6 => {
                let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
                let ip: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
                let ip = Ipv6Addr::from(ip);
                // IPv4-mapped addresses are shown as IPv4.
                let ip = match ip.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(ip),
                };
                SockAddr::Inet { ip, port }
            }
            AF_UNIX => {
                let path = bytes.get(2..).unwrap_or_default();
                match path.first() {
                    None => SockAddr::UnixUnnamed,
                    Some(0) => SockAddr::Abstract {
                        name: lossy(trim_nul(&path[1..])),
                    },
                    Some(_) => SockAddr::Unix {
                        path: lossy(trim_nul(path)),
                    },
                }
            }
            AF_NETLINK => SockAddr::Netlink,
            family => SockAddr::Other { family },
        })
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            SockAddr::Inet { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// Whether this is an internet address (as opposed to a local socket).
    pub fn is_inet(&self) -> bool {
        matches!(self, SockAddr::Inet { .. })
    }
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Inet {
                ip: IpAddr::V4(ip),
                port,
            } => write!(f, "{ip}:{port}"),
            SockAddr::Inet {
                ip: IpAddr::V6(ip),
                port,
            } => write!(f, "[{ip}]:{port}"),
            SockAddr::Unix { path } => write!(f, "unix:{path}"),
            SockAddr::Abstract { name } => write!(f, "unix:@{name}"),
            SockAddr::UnixUnnamed => write!(f, "unix:(unnamed)"),
            SockAddr::Netlink => write!(f, "netlink"),
            SockAddr::Other { family } => write!(f, "family-{family}"),
        }
    }
}

/// The name asked for by a DNS query message (the first question), or `None`
/// if the payload is not a well-formed query.
pub fn dns_query_name(payload: &[u8]) -> Option<String> {
    // Header: id, flags, qdcount, ancount, nscount, arcount (2 bytes each).
    let word = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(
            payload.get(at..at + 2)?.try_into().ok()?,
        ))
    };
    let flags = word(2)?;
    let (qdcount, ancount, nscount, arcount) = (word(4)?, word(6)?, word(8)?, word(10)?);
    // A standard query (QR = 0, opcode 0) with one question and at most an
    // EDNS record: what resolvers send, and what random data almost never is.
    let is_query = flags & 0x8000 == 0 && (flags >> 11) & 0xf == 0;
    if !is_query || qdcount != 1 || ancount != 0 || nscount != 0 || arcount > 1 {
        return None;
    }
    let mut at = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *payload.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers do not appear in a query's first name.
        if len > 63 {
            return None;
        }
        let label = payload.get(at..at + len)?;
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return None;
        }
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
        if labels.len() > 127 {
            return None;
        }
    }
    // QTYPE and QCLASS must follow.
    payload.get(at..at + 4)?;
    if labels.is_empty() {
        return Some(".".into());
    }
    Some(labels.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_inet_and_unix() {
        let mut v4 = vec![2, 0, 0x11, 0x5c, 127, 0, 0, 1];
        v4.extend([0; 8]);
        assert_eq!(SockAddr::decode(&v4).unwrap().to_string(), "127.0.0.1:4444");
        let mut v6 = vec![10, 0, 0, 80, 0, 0, 0, 0];
        v6.extend(Ipv6Addr::LOCALHOST.octets());
        assert_eq!(SockAddr::decode(&v6).unwrap().to_string(), "[::1]:80");
        let unix = [&[1u8, 0][..], b"/run/x.sock\0"].concat();
        assert_eq!(
            SockAddr::decode(&unix).unwrap().to_string(),
            "unix:/run/x.sock"
        );
        let abs = [&[1u8, 0, 0][..], b"hidden"].concat();
        assert_eq!(SockAddr::decode(&abs).unwrap().to_string(), "unix:@hidden");
        assert_eq!(SockAddr::decode(&[2]), None);
        assert_eq!(SockAddr::decode(&[2, 0, 1]), None);
    }

    #[test]
    fn decodes_dns_query() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["evil", "Example", "com"] {
            q.push(label.len() as u8);
            q.extend(label.as_bytes());
        }
        q.extend([0, 0, 1, 0, 1]);
        assert_eq!(dns_query_name(&q).as_deref(), Some("evil.example.com"));
        // Truncated, response, garbage.
        assert_eq!(dns_query_name(&q[..q.len() - 3]), None);
        let mut resp = q.clone();
        resp[2] |= 0x80;
        assert_eq!(dns_query_name(&resp), None);
        assert_eq!(dns_query_name(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(dns_query_name(&[]), None);
    }
}
