//! The network a signature came from, kept in clear: the address truncated to the prefix the
//! budgets and `cahier admin` work with (/24 for IPv4, /48 for IPv6), as analytics tools
//! anonymise addresses. The full address is only ever stored as a keyed hash; the prefix names
//! a carrier's or a hoster's block, not a person, and lets an organizer under attack see which
//! network it is (`cahier admin trending`) without guessing CIDRs.

use crate::client_ip::canonical;
use ipnet::IpNet;
use std::net::IpAddr;

/// Prefix length kept for IPv4 addresses.
pub const IPV4_PREFIX: u8 = 24;
/// Prefix length kept for IPv6 addresses (one site or customer).
pub const IPV6_PREFIX: u8 = 48;

/// `203.0.113.0/24` for `203.0.113.7`, `2001:db8:1::/48` for `2001:db8:1:2::3`; an
/// IPv4-mapped IPv6 address is its IPv4 address.
pub fn network_of(ip: IpAddr) -> String {
    let ip = canonical(ip);
    let len = match ip {
        IpAddr::V4(_) => IPV4_PREFIX,
        IpAddr::V6(_) => IPV6_PREFIX,
    };
    IpNet::new(ip, len)
        .map(|n| n.trunc().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_prefix() {
        let n = |s: &str| network_of(s.parse().unwrap());
        assert_eq!(n("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(n("::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(n("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
        assert_eq!(n("2001:db8::1"), "2001:db8::/48");
    }
}
