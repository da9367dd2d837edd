//! Where deliveries may go. An endpoint is an `http(s)` URL without
//! credentials whose host is a public address: never loopback, private,
//! link-local (the cloud metadata service), shared, multicast, reserved or
//! unspecified — whatever spelling the URL uses (`url` reads `2130706433`,
//! `0x7f.1` and `127.1` as 127.0.0.1) and whatever a name resolves to when a
//! delivery is sent ([`PublicOnly`], so a name rebound to a private address
//! after it was registered reaches nothing). A deployment whose receivers run
//! on its own network (the local demo, the tests) allows private destinations
//! with `RUSHGATE_WEBHOOK_ALLOW_PRIVATE`.
//!
//! URLs are shown and logged [`redacted`]: a token in the query stays out of
//! the console and the logs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a delivery may reach `ip` when private destinations are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let forbidden = a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relays
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224; // multicast, reserved, broadcast
    !forbidden
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    match s {
        // Unspecified, loopback and the IPv4-compatible ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, _, _] => false,
        // NAT64: an IPv4 address inside.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)),
        // 6to4: an IPv4 address inside.
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),
        // Discard-only, documentation, Teredo (tunnels to anywhere).
        [0x100, 0, 0, 0, ..] | [0x2001, 0xdb8, ..] | [0x2001, 0, ..] => false,
        // Unique local (fc00::/7), link-local and site-local (fe80::/10,
        // fec0::/10), multicast (ff00::/8).
        [first, ..] => {
            (first & 0xfe00) != 0xfc00
                && (first & 0xffc0) != 0xfe80
                && (first & 0xffc0) != 0xfec0
                && (first & 0xff00) != 0xff00
        }
    }
}

/// Why an endpoint URL was refused, as the console says it.
pub type Refusal = &'static str;

/// Checks an endpoint URL as written: absolute `http` or `https`, no
/// credentials, and — unless private destinations are allowed — no host that
/// is a private address or a name for this machine.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, Refusal> {
    if url.len() > 2048 {
        return Err("is longer than 2,048 characters");
    }
    let parsed = Url::parse(url).map_err(|_| "is not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("must be an http:// or https:// URL");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials (deliveries are signed instead)");
    }
    if !allow_private && !public_host(&parsed) {
        return Err(PRIVATE);
    }
    Ok(parsed)
}

const PRIVATE: Refusal =
    "must reach a public address (not loopback, private, link-local, multicast or unspecified)";

/// Whether the URL's host, as written, may be public: a public address, or a
/// name that is not one of this machine's own.
fn public_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public_v4(ip),
        Some(url::Host::Ipv6(ip)) => is_public_v6(ip),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            !(name == "localhost"
                || name.ends_with(".localhost")
                || name == "localhost.localdomain"
                || name.ends_with(".internal")
                || name.ends_with(".local"))
        }
        None => false,
    }
}

/// At registration: refuses a name that resolves to any private address now
/// (a name that does not resolve yet is let through; every send checks again).
pub async fn check_resolved(url: &Url, allow_private: bool) -> Result<(), Refusal> {
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    if allow_private {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((name, port));
    match tokio::time::timeout(Duration::from_secs(2), lookup).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.iter().all(|a| is_public(a.ip())) {
                Ok(())
            } else {
                Err(PRIVATE)
            }
        }
        _ => Ok(()),
    }
}

/// The delivery client's resolver: a name's public addresses only; a name
/// with none is unreachable.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("no public address".into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// `url` without what may be a secret: scheme, host, port and path stay; a
/// query becomes `?…`; credentials and fragment go.
pub fn redacted(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "<not a URL>".to_owned();
    };
    let had_query = parsed.query().is_some();
    parsed.set_query(None);
    parsed.set_fragment(None);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let mut shown = parsed.to_string();
    if had_query {
        shown.push_str("?…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_private_spelling_is_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:c0a8:101::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[ff02::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://0/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://printer.local/",
        ] {
            assert_eq!(check_url(url, false).err(), Some(PRIVATE), "{url}");
            assert!(check_url(url, true).is_ok(), "{url} with private allowed");
        }
    }

    #[test]
    fn public_hosts_and_other_rules() {
        for url in [
            "https://hooks.example.com/rushgate?token=x",
            "http://93.184.216.34/",
            "http://172.32.0.1/",
            "http://[2606:4700::1111]/",
            "http://100.128.0.1/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("not a url", true).is_err());
        assert!(check_url("http://user:pw@example.com/", true).is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(2048)), true).is_err());
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let url = Url::parse("http://localhost:9/").unwrap();
        // Caught as text, and by what it resolves to.
        assert_eq!(check_resolved(&url, false).await, Err(PRIVATE));
        assert_eq!(check_resolved(&url, true).await, Ok(()));
        let name: Name = "localhost".parse().unwrap();
        assert!(PublicOnly.resolve(name).await.is_err(), "loopback only");
        let unknown = Url::parse("http://no-such-name.invalid/").unwrap();
        assert_eq!(check_resolved(&unknown, false).await, Ok(()));
    }

    #[test]
    fn redaction_keeps_where_but_not_secrets() {
        assert_eq!(
            redacted("https://h.example/hook?token=s3cret#x"),
            "https://h.example/hook?…"
        );
        assert_eq!(redacted("http://h:81/a/b"), "http://h:81/a/b");
        assert_eq!(redacted("http://u:p@h/"), "http://h/");
        assert!(!redacted("nonsense?token=s3cret").contains("s3cret"));
    }
}
