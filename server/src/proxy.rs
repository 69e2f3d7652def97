//! The client's address behind a reverse proxy (`--trusted-proxy`, off by default).
//!
//! Behind a proxy every TCP peer is the proxy, so rate limits, upload caps and connection caps
//! would treat all users as one. When the TCP peer is one of the configured trusted proxies, the
//! client is read from `Forwarded` (RFC 7239, preferred) or `X-Forwarded-For`: the addresses in
//! the header are walked from the right (the hop nearest to us) and the first one that is not a
//! trusted proxy is the client, so a client cannot pick its own address by sending the header
//! itself (the proxy appends the real peer after whatever the client sent). A peer that is not
//! trusted, or a header that does not parse, leaves the TCP peer as the client. Nothing here
//! trusts a header when the list is empty.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// One address or CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A trusted-proxy entry that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("not an IP address or CIDR block: {0:?}")]
pub struct BadIpNet(pub String);

impl FromStr for IpNet {
    type Err = BadIpNet;

    fn from_str(s: &str) -> Result<Self, BadIpNet> {
        let bad = || BadIpNet(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self {
            addr: addr.to_canonical(),
            prefix,
        })
    }
}

impl IpNet {
    /// Whether `ip` is inside this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The configured trusted proxies (empty: forwarding headers are ignored).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = BadIpNet;

    /// A comma-separated list; empty means none.
    fn from_str(s: &str) -> Result<Self, BadIpNet> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(IpNet::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    /// Whether any proxy is trusted.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted and a forwarding header
    /// names someone else.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        let Some(hops) = hops else { return peer };
        // Rightmost first: the nearest hop a trusted proxy vouches for.
        let mut client = peer;
        for hop in hops.iter().rev() {
            client = *hop;
            if !self.trusts(*hop) {
                break;
            }
        }
        client
    }

    /// Whether a trusted proxy says the client's request came over HTTPS.
    pub fn forwarded_https(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        if !self.trusts(peer) {
            return false;
        }
        let proto = headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case("proto"))
            .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase())
            .next_back()
            .or_else(|| {
                headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .map(|v| v.trim().to_ascii_lowercase())
            });
        proto.as_deref() == Some("https")
    }
}

/// The `for=` addresses of every `Forwarded` element, in order; `None` when the header is absent
/// or any element names no usable address (obfuscated, `unknown`, malformed).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut out = Vec::new();
    let mut any = false;
    for value in headers.get_all("forwarded") {
        any = true;
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            let node = element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .map(|(_, v)| v.trim().trim_matches('"'))?;
            out.push(parse_node(node)?);
        }
    }
    (any && !out.is_empty()).then_some(out)
}

/// `X-Forwarded-For: client, proxy1, proxy2`; `None` when absent or malformed.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for hop in value.to_str().ok()?.split(',') {
            out.push(parse_node(hop.trim())?);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    let (ip, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.200.1.2")) && !n.contains(ip("11.0.0.1")));
        let n: IpNet = "::1".parse().unwrap();
        assert!(n.contains(ip("::1")) && !n.contains(ip("::2")));
        let n: IpNet = "127.0.0.1".parse().unwrap();
        assert!(n.contains(ip("::ffff:127.0.0.1")), "v4-mapped peers match");
        let n: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(n.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!(!"".parse::<TrustedProxies>().unwrap().enabled());
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let off = TrustedProxies::default();
        let on: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(off.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        assert_eq!(on.client(ip("192.0.2.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn a_client_cannot_choose_its_address() {
        let on: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        // The client sent "1.1.1.1"; the proxy appended the real peer.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7")]);
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        // Through two trusted proxies.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.1.2.3")]);
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("2001:db8::7"));
        assert!(on.forwarded_https(ip("127.0.0.1"), &h));
        assert!(!on.forwarded_https(ip("192.0.2.1"), &h));
        // Forwarded wins over X-Forwarded-For; garbage leaves the peer.
        let h = headers(&[
            ("forwarded", "for=198.51.100.2:80"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("198.51.100.2"));
        let h = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(on.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }
}
