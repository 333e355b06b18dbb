//! This machine's network as the kernel has it: each interface with its MAC and
//! addresses, and the default routes, from `ip -j address` and `ip -j route` (iproute2,
//! which every NixOS system has). Nothing is changed.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde::Deserialize;

/// Is `address` reachable from the internet (not private, loopback, link-local, …)?
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || first & 0xffc0 == 0xfe80
                || first & 0xfe00 == 0xfc00)
        }
    }
}

/// One interface of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// Lower-case `aa:bb:…`; `None` for interfaces without a hardware address.
    pub mac: Option<String>,
    /// Each address with its prefix length.
    pub addresses: Vec<(IpAddr, u8)>,
}

/// This machine's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetFacts {
    /// Every interface but loopback.
    pub interfaces: Vec<Interface>,
    /// The gateways of the default routes (IPv4 and IPv6).
    pub gateways: Vec<IpAddr>,
}

impl NetFacts {
    pub fn has_address(&self, address: IpAddr) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.addresses.iter().any(|(a, _)| *a == address))
    }

    pub fn has_mac(&self, mac: &str) -> bool {
        let mac = mac.to_ascii_lowercase();
        self.interfaces
            .iter()
            .any(|i| i.mac.as_deref() == Some(mac.as_str()))
    }
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    link_type: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    prefixlen: Option<u8>,
}

#[derive(Deserialize)]
struct IpRoute {
    #[serde(default)]
    gateway: Option<String>,
}

fn ip_json(args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("ip")
        .arg("-j")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ip -j {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}

/// Read this machine's interfaces, addresses and default gateways.
pub fn read() -> Result<NetFacts, String> {
    let mut facts = parse_addresses(&ip_json(&["address", "show"])?)?;
    for family in ["-4", "-6"] {
        let routes = ip_json(&[family, "route", "show", "default"])?;
        facts.gateways.extend(parse_gateways(&routes)?);
    }
    Ok(facts)
}

/// `ip -j address show`.
pub fn parse_addresses(json: &[u8]) -> Result<NetFacts, String> {
    let links: Vec<IpLink> =
        serde_json::from_slice(json).map_err(|e| format!("ip -j address: {e}"))?;
    let interfaces = links
        .into_iter()
        .filter(|l| l.link_type.as_deref() != Some("loopback"))
        .map(|l| Interface {
            mac: l
                .address
                .filter(|m| m.len() == 17 && m != "00:00:00:00:00:00")
                .map(|m| m.to_ascii_lowercase()),
            addresses: l
                .addr_info
                .iter()
                .filter_map(|a| Some((a.local.as_deref()?.parse().ok()?, a.prefixlen?)))
                .collect(),
            name: l.ifname,
        })
        .collect();
    Ok(NetFacts {
        interfaces,
        gateways: Vec::new(),
    })
}

/// `ip -j route show default`: the gateways.
pub fn parse_gateways(json: &[u8]) -> Result<Vec<IpAddr>, String> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let routes: Vec<IpRoute> =
        serde_json::from_slice(json).map_err(|e| format!("ip -j route: {e}"))?;
    Ok(routes
        .into_iter()
        .filter_map(|r| r.gateway?.parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_macs_come_from_ip_json() {
        let json = br#"[{"ifindex":1,"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
            {"ifindex":2,"ifname":"eth0","link_type":"ether","address":"96:00:0A:0B:0C:0D","addr_info":[{"family":"inet","local":"203.0.113.7","prefixlen":32},{"family":"inet6","local":"fe80::9400:aff:fe0b:c0d","prefixlen":64}]}]"#;
        let facts = parse_addresses(json).unwrap_or_default();
        assert_eq!(facts.interfaces.len(), 1);
        let eth0 = &facts.interfaces[0];
        assert_eq!(eth0.name, "eth0");
        assert_eq!(eth0.mac.as_deref(), Some("96:00:0a:0b:0c:0d"));
        assert!(facts.has_address("203.0.113.7".parse().unwrap_or(IpAddr::from([0; 4]))));
        assert!(facts.has_mac("96:00:0A:0B:0C:0D"));
        let gateways = parse_gateways(
            br#"[{"dst":"default","gateway":"172.31.1.1","dev":"eth0","flags":["onlink"]}]"#,
        );
        assert_eq!(gateways, Ok(vec![IpAddr::from([172, 31, 1, 1])]));
        assert_eq!(parse_gateways(b"\n"), Ok(Vec::new()));
    }
}
