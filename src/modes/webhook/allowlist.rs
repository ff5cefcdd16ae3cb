//! Which webhook targets may be registered: real senders refuse private and loopback targets
//! (SSRF); ours refuses everything outside an explicit list, by default the loopback addresses
//! the driver's receivers use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hyper::Uri;

/// A list of address ranges webhook targets must fall in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<(IpAddr, u8)>,
}

impl Default for Allowlist {
    /// Loopback only: 127.0.0.0/8 and ::1.
    fn default() -> Self {
        Allowlist {
            nets: vec![
                (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ],
        }
    }
}

impl Allowlist {
    /// Adds a range: an address (`10.0.0.5`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
    pub fn add(&mut self, range: &str) -> Result<(), String> {
        let (ip, bits) = match range.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (range, None),
        };
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("`{ip}` is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`/{b}` is not a prefix length 0..={max}"))?,
        };
        self.nets.push((ip, bits));
        Ok(())
    }

    /// True when `ip` is inside one of the ranges.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }

    /// Parses a target URL and checks it: `http`, an address literal inside the list, and a
    /// port. Names need [`Allowlist::resolve`].
    pub fn check(&self, url: &str) -> Result<Uri, String> {
        let (uri, host, _) = parse_target(url)?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("host `{host}` is not an address"))?;
        self.admit(ip, &host)?;
        Ok(uri)
    }

    /// Checks a target and pins it to an address. A literal is checked as it is; a name is
    /// resolved, and every address it resolves to must be inside the list (a name that also
    /// points elsewhere is refused). The URL handed back names the first address, so a later
    /// DNS answer cannot move the target; the original `host:port` is returned for the `Host`
    /// header.
    pub async fn resolve(&self, url: &str) -> Result<(Uri, String), String> {
        let (uri, host, port) = parse_target(url)?;
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        if let Ok(uri) = self.check(url) {
            return Ok((uri, authority));
        }
        if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
            // A literal that check() refused: say why.
            return Err(self.check(url).unwrap_err());
        }
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::time::timeout(std::time::Duration::from_secs(3), lookup).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Err(format!("cannot resolve `{host}`: {e}")),
                Err(_) => return Err(format!("resolving `{host}` took more than 3 s")),
            };
        let first = addrs
            .first()
            .ok_or_else(|| format!("`{host}` resolves to no address"))?;
        for a in &addrs {
            self.admit(a.ip(), &host)?;
        }
        let pinned = match first.ip() {
            IpAddr::V4(ip) => format!("{ip}:{port}"),
            IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        };
        let mut parts = uri.into_parts();
        parts.authority = Some(pinned.parse().map_err(|e| format!("pinning {pinned}: {e}"))?);
        let uri = Uri::from_parts(parts).map_err(|e| format!("pinning {pinned}: {e}"))?;
        Ok((uri, authority))
    }

    fn admit(&self, ip: IpAddr, host: &str) -> Result<(), String> {
        if self.allows(ip) {
            Ok(())
        } else if host.trim_start_matches('[').trim_end_matches(']') == ip.to_string() {
            Err(format!(
                "target {ip} is outside the allowlist ({})",
                self.describe()
            ))
        } else {
            Err(format!(
                "`{host}` resolves to {ip}, outside the allowlist ({})",
                self.describe()
            ))
        }
    }

    fn describe(&self) -> String {
        self.nets
            .iter()
            .map(|(n, b)| format!("{n}/{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `http`, a host and an explicit port.
fn parse_target(url: &str) -> Result<(Uri, String, u16), String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// targets are supported".into());
    }
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let port = uri.port_u16().ok_or("the URL needs an explicit port")?;
    Ok((uri, host, port))
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_by_default() {
        let a = Allowlist::default();
        assert!(a.check("http://127.0.0.1:8080/hook").is_ok());
        assert!(a.check("http://127.0.3.9:8080/hook").is_ok());
        assert!(a.check("http://[::1]:8080/hook").is_ok());
        assert!(a
            .check("http://10.0.0.1:8080/")
            .unwrap_err()
            .contains("outside the allowlist"));
        assert!(a.check("http://169.254.169.254:80/").is_err());
        assert!(a
            .check("http://example.com:80/")
            .unwrap_err()
            .contains("not an address"));
        assert!(a.check("https://127.0.0.1:443/").is_err());
        assert!(a.check("http://127.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn names_are_resolved_checked_and_pinned() {
        let a = Allowlist::default();
        // localhost resolves (from the hosts file) to loopback addresses only.
        let (uri, host) = a.resolve("http://localhost:8080/hook?x=1").await.unwrap();
        let ip: IpAddr = uri
            .host()
            .unwrap()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .unwrap();
        assert!(ip.is_loopback(), "{uri}");
        assert_eq!(
            (uri.port_u16(), uri.path(), uri.query()),
            (Some(8080), "/hook", Some("x=1"))
        );
        assert_eq!(host, "localhost:8080");
        // Literals pass through unchanged, or are refused with the reason.
        let (uri, _) = a.resolve("http://127.0.0.9:1/").await.unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.9:1/");
        assert!(a
            .resolve("http://10.1.2.3:80/")
            .await
            .unwrap_err()
            .contains("outside"));
        // A loopback-only allowlist refuses a name that resolves there when loopback is removed.
        let none = Allowlist { nets: Vec::new() };
        assert!(none
            .resolve("http://localhost:80/")
            .await
            .unwrap_err()
            .contains("`localhost` resolves to"));
    }

    #[test]
    fn ranges_can_be_added() {
        let mut a = Allowlist::default();
        a.add("10.0.0.0/8").unwrap();
        a.add("192.168.1.7").unwrap();
        assert!(a.check("http://10.9.8.7:80/").is_ok());
        assert!(a.check("http://192.168.1.7:80/").is_ok());
        assert!(a.check("http://192.168.1.8:80/").is_err());
        assert!(a.add("10.0.0.0/33").is_err());
        assert!(a.add("ten").is_err());
    }
}
