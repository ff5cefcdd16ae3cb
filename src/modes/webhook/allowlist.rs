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

    /// Parses a target URL and checks it: `http`, an address literal (or `localhost`) inside
    /// the list, and a port. Names are not resolved, so a DNS answer cannot smuggle a target in.
    pub fn check(&self, url: &str) -> Result<Uri, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("only http:// targets are supported".into());
        }
        let host = uri.host().ok_or("the URL has no host")?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("host `{host}` is not an address; targets must be given as addresses in the allowlist"))?
        };
        if !self.allows(ip) {
            return Err(format!(
                "target {ip} is outside the allowlist ({})",
                self.describe()
            ));
        }
        if uri.port_u16().is_none() {
            return Err("the URL needs an explicit port".into());
        }
        Ok(uri)
    }

    fn describe(&self) -> String {
        self.nets
            .iter()
            .map(|(n, b)| format!("{n}/{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
        assert!(a.check("http://localhost:8080/").is_ok());
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
