//! Where a request comes from, as the throttles count it.
//!
//! An IPv6 host is normally handed a whole /64, so counting single IPv6
//! addresses would let one host rotate through 2^64 of them: sources are
//! IPv4 addresses and IPv6 /64 prefixes. IPv4-mapped IPv6 addresses
//! (`::ffff:192.0.2.1`, from dual-stack sockets) count as the IPv4 address.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};

/// A throttling source: an IPv4 address, an IPv6 /64, or unknown (no peer
/// address, which a real connection always has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SourceAddr(Option<IpAddr>);

impl SourceAddr {
    pub(crate) fn of(addr: Option<IpAddr>) -> SourceAddr {
        SourceAddr(addr.map(|ip| match ip.to_canonical() {
            IpAddr::V6(v6) => {
                Ipv6Net::new(v6, 64).map_or(IpAddr::V6(v6), |net| IpAddr::V6(net.trunc().addr()))
            }
            v4 => v4,
        }))
    }
}

impl fmt::Display for SourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Some(v4) => write!(f, "{v4}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Whether `addr` lies in one of `nets` (an unknown address never does).
pub(crate) fn trusted(addr: Option<IpAddr>, nets: &[IpNet]) -> bool {
    addr.is_some_and(|ip| {
        let ip = ip.to_canonical();
        nets.iter().any(|n| n.contains(&ip))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn sources_group_ipv6_by_64() {
        assert_eq!(
            SourceAddr::of(ip("2001:db8:1:2:aaaa::1")),
            SourceAddr::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            SourceAddr::of(ip("2001:db8:1:2::1")),
            SourceAddr::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            SourceAddr::of(ip("::ffff:192.0.2.1")),
            SourceAddr::of(ip("192.0.2.1"))
        );
        assert_ne!(
            SourceAddr::of(ip("192.0.2.1")),
            SourceAddr::of(ip("192.0.2.2"))
        );
        assert_eq!(
            SourceAddr::of(ip("2001:db8::5")).to_string(),
            "2001:db8::/64"
        );
        assert_eq!(SourceAddr::of(None).to_string(), "unknown");
    }

    #[test]
    fn trust_is_by_network() {
        let nets = crate::config::parse_trusted("10.0.5.0/24,::1").unwrap();
        assert!(trusted(ip("10.0.5.20"), &nets));
        assert!(trusted(ip("::ffff:10.0.5.20"), &nets));
        assert!(trusted(ip("::1"), &nets));
        assert!(!trusted(ip("10.0.6.1"), &nets));
        assert!(!trusted(ip("127.0.0.1"), &nets));
        assert!(!trusted(None, &nets));
        assert!(!trusted(ip("10.0.5.20"), &[]));
    }
}
