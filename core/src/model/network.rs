//! IP allowlists: the networks a credential may be used from, IPv4 and
//! IPv6, checked on the hot path after the digest has matched.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::error::{Error, Result};

/// Most networks one allowlist may hold.
pub const MAX_NETWORKS: usize = 64;

/// A non-empty list of networks; cheap to clone (shared with the cache).
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedIps(Arc<[IpNet]>);

impl AllowedIps {
    /// Parses `CIDR[,CIDR…]` (a bare address is a /32 or /128). Networks
    /// are stored in canonical form (`192.0.2.7/24` → `192.0.2.0/24`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming
    /// the first entry that is neither a network nor an address, or for an
    /// empty or over-long list.
    pub fn parse(list: &str) -> Result<AllowedIps> {
        let mut nets: Vec<IpNet> = Vec::new();
        for item in list.split(',').map(str::trim) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    Error::invalid_input(format!(
                        "{item:?} is not an IP address or network (e.g. 192.0.2.0/24, 2001:db8::/32)"
                    ))
                })?
                .trunc();
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.is_empty() || list.trim().is_empty() {
            return Err(Error::invalid_input(
                "an allowlist needs at least one network",
            ));
        }
        if nets.len() > MAX_NETWORKS {
            return Err(Error::invalid_input(format!(
                "at most {MAX_NETWORKS} networks per allowlist"
            )));
        }
        Ok(AllowedIps(nets.into()))
    }

    /// Whether a request from `ip` may use the credential. An unknown or
    /// unparseable address is refused: an allowlist fails closed. An
    /// IPv4-mapped IPv6 address counts as its IPv4 address.
    #[must_use]
    pub fn admits(&self, ip: Option<&str>) -> bool {
        let Some(addr) = ip.and_then(|s| s.trim().parse::<IpAddr>().ok()) else {
            return false;
        };
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The networks.
    #[must_use]
    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// The stored form, `192.0.2.0/24,2001:db8::/32`.
    #[must_use]
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Debug for AllowedIps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AllowedIps({})", self.to_stored())
    }
}

impl fmt::Display for AllowedIps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_admit_what_they_contain() {
        let a = AllowedIps::parse("192.0.2.7/24, 2001:db8::/32,198.51.100.9").unwrap();
        assert_eq!(a.to_stored(), "192.0.2.0/24,2001:db8::/32,198.51.100.9/32");
        assert!(a.admits(Some("192.0.2.200")));
        assert!(a.admits(Some("::ffff:192.0.2.1")));
        assert!(a.admits(Some("2001:db8:ffff::1")));
        assert!(a.admits(Some("198.51.100.9")));
        assert!(!a.admits(Some("198.51.100.10")));
        assert!(!a.admits(Some("2001:db9::1")));
        assert!(!a.admits(None), "unknown address: fail closed");
        assert!(!a.admits(Some("not an ip")));
        for bad in ["", "300.1.1.1", "192.0.2.0/33", "a,b", ","] {
            assert!(AllowedIps::parse(bad).is_err(), "{bad}");
        }
        assert!(
            AllowedIps::parse(&vec!["10.0.0.1"; 65].join(",")).is_ok(),
            "duplicates fold"
        );
    }
}
