//! The network and login part of `boot-safety`: after the reboot the only way into a VPS
//! is the network, so the new system's addresses, interface names, sshd, firewall and
//! authorized keys are held against this machine's interfaces, MACs and addresses.
//!
//! Static addresses of the dead server (nixos-infect writes them, with `dhcpcd.enable =
//! false` and a udev rule naming the interface after the old MAC) leave a machine that
//! boots but answers nowhere; sshd set up by hand, a closed port or keys added by hand to
//! root's home leave one that answers but lets nobody in.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::blocker::{Blocker, Place};
use crate::escape::escape_bytes;
use crate::exec::netfacts::{NetFacts, is_public};

/// The network options of the new system, as the evaluation gives them (`None`: the
/// option is not defined, NixOS's default applies).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(rename = "useDHCP")]
    pub use_dhcp: Option<bool>,
    pub dhcpcd: Option<bool>,
    pub use_networkd: Option<bool>,
    pub predictable_names: Option<bool>,
    /// `networking.defaultGateway` and `defaultGateway6`: their address.
    pub default_gateway: Option<String>,
    pub default_gateway6: Option<String>,
    #[serde(default)]
    pub interfaces: BTreeMap<String, Interface>,
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkdNetwork>,
    #[serde(default)]
    pub udev_rules: Option<String>,
}

/// `networking.interfaces.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    #[serde(rename = "useDHCP")]
    pub use_dhcp: Option<bool>,
    #[serde(default)]
    pub addresses: Vec<StaticAddress>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticAddress {
    pub address: String,
    pub prefix_length: Option<u32>,
}

/// `systemd.network.networks.<name>`: what it matches, its addresses and DHCP.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkdNetwork {
    pub name: Option<Value>,
    pub mac: Option<Value>,
    #[serde(default)]
    pub address: Option<Value>,
    pub dhcp: Option<Value>,
}

/// sshd, the firewall and the authorized keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub sshd: Option<bool>,
    pub ports: Option<Vec<u32>>,
    pub open_firewall: Option<bool>,
    pub password_authentication: Option<bool>,
    pub firewall: Option<bool>,
    pub allowed_ports: Option<Vec<u32>>,
    pub allowed_ranges: Option<Vec<PortRange>>,
    /// How many authorized keys (and key files) each of root and the user has.
    #[serde(default)]
    pub keys: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PortRange {
    pub from: u32,
    pub to: u32,
}

/// What the judge found.
#[derive(Debug, Default)]
pub struct Judged {
    pub blockers: Vec<Blocker>,
    pub warnings: Vec<String>,
    /// The edits of string literals that give the configuration this machine's addresses
    /// and MAC in place of the old server's.
    pub fixes: Vec<Fix>,
    /// Whether `fixes` remove every blocker found (there is one, and each has its edit).
    pub fixable: bool,
}

/// One string literal to change: `old` (the whole literal, or text inside it) to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub old: String,
    pub new: String,
    pub whole: bool,
}

/// The escape hatch every address blocker offers besides the edit.
const PRIMARY_IPS: &str = "or move the old server's Primary IPs to this server in the \
    provider's console and run recover again";

/// The MAC a link-local IPv6 address was derived from (EUI-64), if it was.
fn eui64_mac(address: Ipv6Addr) -> Option<String> {
    let b = address.octets();
    let link_local = address.segments()[0] & 0xffc0 == 0xfe80;
    (link_local && b[11] == 0xff && b[12] == 0xfe).then(|| {
        [b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// `ATTR{address}=="<mac>"` … `NAME="<name>"` rules: `(mac, name)`, as written.
fn mac_rules(rules: &str) -> Vec<(String, String)> {
    let quoted = |text: &str, key: &str| {
        let rest = &text[text.find(key)? + key.len()..];
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    rules
        .lines()
        .filter_map(|line| {
            let mac = quoted(line, "ATTR{address}==")?;
            let name = line
                .match_indices("NAME=")
                .filter(|(at, _)| !line[at + 5..].starts_with('='))
                .find_map(|(at, _)| quoted(&line[at..], "NAME="))?;
            Some((mac, name))
        })
        .collect()
}

/// Strings of a value that is one string (space-separated, as networkd reads it) or a list.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn dhcp_on(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "yes" | "true" | "ipv4" | "ipv6" | "both"),
        _ => false,
    }
}

/// One configured interface, from either kind of configuration.
struct Configured {
    /// How the message names it: `networking.interfaces.eth0`.
    option: String,
    /// The option that turns DHCP on for it.
    dhcp_option: String,
    /// The interface names it applies to.
    names: Vec<String>,
    macs: Vec<String>,
    dhcp: bool,
    /// `(address, prefix, the literal that sets it)`.
    addresses: Vec<(IpAddr, Option<u32>, String)>,
}

fn configured(net: &Network) -> Vec<Configured> {
    let dhcp_client = net.use_networkd == Some(true) || net.dhcpcd != Some(false);
    let mut out = Vec::new();
    for (name, interface) in &net.interfaces {
        out.push(Configured {
            option: format!("networking.interfaces.{name}"),
            dhcp_option: format!("networking.interfaces.{name}.useDHCP = true;"),
            names: vec![name.clone()],
            macs: Vec::new(),
            dhcp: dhcp_client && interface.use_dhcp.unwrap_or(net.use_dhcp.unwrap_or(true)),
            addresses: interface
                .addresses
                .iter()
                .filter_map(|a| Some((a.address.parse().ok()?, a.prefix_length, a.address.clone())))
                .collect(),
        });
    }
    for (key, network) in &net.networks {
        out.push(Configured {
            option: format!("systemd.network.networks.{key}"),
            dhcp_option: format!("systemd.network.networks.{key}.networkConfig.DHCP = \"yes\";"),
            names: strings(network.name.as_ref()),
            macs: strings(network.mac.as_ref())
                .iter()
                .map(|m| m.to_ascii_lowercase())
                .collect(),
            dhcp: dhcp_on(network.dhcp.as_ref()),
            addresses: strings(network.address.as_ref())
                .into_iter()
                .filter_map(|literal| {
                    let (address, prefix) = match literal.split_once('/') {
                        Some((a, p)) => (a.parse().ok()?, p.parse().ok()),
                        None => (literal.parse().ok()?, None),
                    };
                    Some((address, prefix, literal))
                })
                .collect(),
        });
    }
    out
}

/// This machine's public addresses, `address/prefix on interface`.
fn own_public(machine: &NetFacts) -> String {
    let mine: Vec<String> = machine
        .interfaces
        .iter()
        .flat_map(|i| {
            i.addresses
                .iter()
                .filter(|(a, _)| is_public(*a))
                .map(move |(a, p)| format!("{a}/{p} on {}", escape_bytes(i.name.as_bytes())))
        })
        .collect();
    if mine.is_empty() {
        "no public address (it gets its own by DHCP)".into()
    } else {
        format!("its own: {}", mine.join(", "))
    }
}

fn at(place: Option<Place>) -> String {
    place.map(|p| format!(" (set at {p})")).unwrap_or_default()
}

/// Judge the network the new system sets up against this machine's. `find` gives where a
/// string (whole, or inside a literal) is set in the repository.
pub fn judge_network(
    net: &Network,
    machine: &NetFacts,
    old_server: &[IpAddr],
    find: &dyn Fn(&str, bool) -> Option<Place>,
) -> Judged {
    let mut judged = Judged::default();
    let predictable = net.predictable_names != Some(false);
    let rules = mac_rules(net.udev_rules.as_deref().unwrap_or_default());
    // The names interfaces get by default after the reboot: the ones they have now, or
    // with predictable names off the kernel's eth0, eth1, … (one per interface with a MAC).
    let default_names: Vec<String> = if predictable {
        machine.interfaces.iter().map(|i| i.name.clone()).collect()
    } else {
        (0..machine
            .interfaces
            .iter()
            .filter(|i| i.mac.is_some())
            .count())
            .map(|n| format!("eth{n}"))
            .collect()
    };
    let mut names = default_names.clone();
    names.extend(
        rules
            .iter()
            .filter(|(mac, _)| machine.has_mac(mac))
            .map(|(_, name)| name.clone()),
    );
    let exists = |c: &Configured| {
        c.macs.iter().any(|m| machine.has_mac(m))
            || c.names.iter().any(|pattern| {
                glob::Pattern::new(pattern).is_ok_and(|p| names.iter().any(|n| p.matches(n)))
            })
    };
    // This machine's MACs, those of interfaces with a public address first.
    let mut nics: Vec<_> = machine.interfaces.iter().collect();
    nics.sort_by_key(|i| !i.addresses.iter().any(|(a, _)| is_public(*a)));
    let macs: Vec<String> = nics.iter().filter_map(|i| i.mac.clone()).collect();
    let macs_shown = if macs.is_empty() {
        "none".to_string()
    } else {
        macs.join(", ")
    };
    // What the fix puts in: the addresses and MAC of the interface with public addresses.
    let main = nics.first();
    let own = |v4: bool| {
        main?
            .addresses
            .iter()
            .map(|(a, _)| *a)
            .find(|a| is_public(*a) && a.is_ipv4() == v4)
    };
    let own_link_local = main.and_then(|nic| {
        nic.addresses
            .iter()
            .map(|(a, _)| *a)
            .find(|a| a.is_ipv6() && is_link_local(*a))
            .or_else(|| nic.mac.as_deref().and_then(link_local_of).map(IpAddr::V6))
    });
    judged.fixable = true;
    let configured = configured(net);
    for c in &configured {
        for (address, prefix, literal) in &c.addresses {
            if is_public(*address) && !machine.has_address(*address) && !c.dhcp {
                let prefix = prefix.map(|p| format!("/{p}")).unwrap_or_default();
                judged.blockers.push(Blocker {
                    problem: format!(
                        "{} gives the static address {address}{prefix}{}, which is {}not this machine's ({}), and that interface has no DHCP: after the reboot the machine would answer at the old server's address and could not be reached",
                        escape_bytes(c.option.as_bytes()),
                        at(find(literal, true)),
                        if old_server.contains(address) {
                            "the old server's (the recovery card records it), "
                        } else {
                            ""
                        },
                        own_public(machine),
                    ),
                    nix: format!(
                        "the address this machine has in {}'s addresses, or {} — {PRIMARY_IPS}",
                        escape_bytes(c.option.as_bytes()),
                        escape_bytes(c.dhcp_option.as_bytes())
                    ),
                });
                match own(address.is_ipv4()) {
                    Some(new) => judged.fixes.push(Fix {
                        old: literal.clone(),
                        new: match literal.split_once('/') {
                            Some((_, prefix)) => format!("{new}/{prefix}"),
                            None => new.to_string(),
                        },
                        whole: true,
                    }),
                    None => judged.fixable = false,
                }
            }
            if let IpAddr::V6(v6) = address
                && let Some(mac) = eui64_mac(*v6)
                && !machine.has_mac(&mac)
            {
                judged.warnings.push(format!(
                    "{} gives the link-local address {address}{}, derived from the MAC {mac}, which this machine does not have (its MACs: {macs_shown})",
                    escape_bytes(c.option.as_bytes()),
                    at(find(literal, true)),
                ));
                if let Some(new) = own_link_local {
                    judged.fixes.push(Fix {
                        old: literal.clone(),
                        new: match literal.split_once('/') {
                            Some((_, prefix)) => format!("{new}/{prefix}"),
                            None => new.to_string(),
                        },
                        whole: true,
                    });
                }
            }
        }
    }
    // The default gateways: one that is not this machine's is a warning, and part of the fix.
    for (option, gateway) in [
        ("networking.defaultGateway", &net.default_gateway),
        ("networking.defaultGateway6", &net.default_gateway6),
    ] {
        let Some(literal) = gateway else { continue };
        let Ok(address) = literal.parse::<IpAddr>() else {
            continue;
        };
        let same_family: Vec<IpAddr> = machine
            .gateways
            .iter()
            .copied()
            .filter(|g| g.is_ipv4() == address.is_ipv4())
            .collect();
        if let Some(own) = same_family.first()
            && !same_family.contains(&address)
        {
            judged.warnings.push(format!(
                "{option} is {address}{}, but this machine's default route goes via {own}",
                at(find(literal, true))
            ));
            judged.fixes.push(Fix {
                old: literal.clone(),
                new: own.to_string(),
                whole: true,
            });
        }
    }
    // Some way in: DHCP on every interface not opted out, or an interface that will exist
    // with an address or DHCP.
    let dhcp_client = net.use_networkd == Some(true) || net.dhcpcd != Some(false);
    let everywhere = dhcp_client && net.use_dhcp != Some(false);
    let usable = |c: &Configured| {
        exists(c) && (c.dhcp || c.addresses.iter().any(|(a, _, _)| !is_link_local(*a)))
    };
    let way_in = everywhere || configured.iter().any(usable);
    let mut named_away = false;
    for (mac, name) in &rules {
        if machine.has_mac(mac) {
            continue;
        }
        let place = at(find(mac, false));
        match macs.first() {
            Some(new) => judged.fixes.push(Fix {
                old: mac.clone(),
                new: new.clone(),
                whole: false,
            }),
            None => judged.fixable = false,
        }
        if default_names.contains(name) {
            judged.warnings.push(format!(
                "services.udev.extraRules names {name} after the MAC {mac}{place}, which this machine does not have (its MACs: {macs_shown}); the interface is called {name} by default anyway, so the rule does nothing here"
            ));
        } else if !predictable && !way_in {
            let carries = configured
                .iter()
                .any(|c| c.names.contains(name) && (c.dhcp || !c.addresses.is_empty()));
            if carries {
                named_away = true;
                judged.blockers.push(Blocker {
                    problem: format!(
                        "services.udev.extraRules names the interface {name} after the MAC {mac}{place}, which this machine does not have (its MACs: {macs_shown}); with usePredictableInterfaceNames off nothing else is called {name}, so the interface that carries the only address would not exist after the reboot"
                    ),
                    nix: format!(
                        "ATTR{{address}}==\"{}\", NAME=\"{name}\" in services.udev.extraRules (this machine's MAC)",
                        macs.first().map_or("<this machine's MAC>", String::as_str)
                    ),
                });
            }
        }
    }
    if !way_in && !named_away {
        judged.fixable = false;
        judged.blockers.push(Blocker {
            problem: "no interface of the new system gets an address or DHCP: after the reboot the machine would be on no network".into(),
            nix: if dhcp_client {
                "networking.useDHCP = true;".into()
            } else {
                "networking.dhcpcd.enable = true; networking.useDHCP = true;".into()
            },
        });
    }
    judged.fixable &= !judged.blockers.is_empty();
    judged
}

/// The link-local IPv6 address the kernel derives from `mac` (EUI-64).
fn link_local_of(mac: &str) -> Option<Ipv6Addr> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, e, f] = bytes[..] else {
        return None;
    };
    Some(Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ]))
}

fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Judge sshd, the firewall and the keys (`volume_keys`: those in the user's
/// `~/.ssh/authorized_keys` on the volume, which sshd reads after the reboot too).
pub fn judge_login(login: &Login, user: Option<&str>, volume_keys: usize) -> Vec<Blocker> {
    let mut blockers = Vec::new();
    if login.sshd != Some(true) {
        blockers.push(Blocker {
            problem: "services.openssh is not enabled: after the reboot nothing would listen for SSH (an sshd set up by hand died with the old root disk)".into(),
            nix: "services.openssh.enable = true;".into(),
        });
    } else {
        let ports = login.ports.clone().unwrap_or_else(|| vec![22]);
        let allowed = |port: &u32| {
            login.allowed_ports.iter().flatten().any(|p| p == port)
                || login
                    .allowed_ranges
                    .iter()
                    .flatten()
                    .any(|r| (r.from..=r.to).contains(port))
        };
        let closed = login.firewall != Some(false)
            && login.open_firewall == Some(false)
            && !ports.iter().any(allowed);
        if closed {
            let shown: Vec<String> = ports.iter().map(ToString::to_string).collect();
            blockers.push(Blocker {
                problem: format!(
                    "sshd listens on port {} but the firewall closes it: services.openssh.openFirewall is false and networking.firewall.allowedTCPPorts does not have it",
                    shown.join(", ")
                ),
                nix: format!(
                    "services.openssh.openFirewall = true; (or networking.firewall.allowedTCPPorts = [ {} ];)",
                    shown.join(" ")
                ),
            });
        }
    }
    let keys = |who: &str| login.keys.get(who).copied().unwrap_or(0);
    let user_keys = user.map_or(0, |u| keys(u) + volume_keys as u64);
    if login.password_authentication == Some(false) && keys("root") == 0 && user_keys == 0 {
        let who = user.map_or("root".to_string(), |u| format!("root nor {u}"));
        let holder = user.unwrap_or("root");
        blockers.push(Blocker {
            problem: format!(
                "password login is off and neither {who} has an authorized key in the configuration (nor the user's ~/.ssh/authorized_keys on the volume): keys added by hand to root's ~/.ssh/authorized_keys died with the old root disk"
            ),
            nix: format!(
                "users.users.{holder}.openssh.authorizedKeys.keys = [ \"ssh-ed25519 AAAA… you@laptop\" ];"
            ),
        });
    }
    blockers
}

/// The keys in `<home>/.ssh/authorized_keys` (sshd reads it after the reboot, the volume
/// mounted at the home), counted without following a link off the volume.
pub fn authorized_keys(home: &Path) -> usize {
    let ssh = home.join(".ssh");
    let file = ssh.join("authorized_keys");
    let plain = |p: &Path, dir: bool| {
        std::fs::symlink_metadata(p).is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() })
    };
    if !plain(&ssh, true) || !plain(&file, false) {
        return 0;
    }
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::netfacts::Interface as Nic;

    fn machine() -> NetFacts {
        NetFacts {
            interfaces: vec![Nic {
                name: "eth0".into(),
                mac: Some("96:00:0a:0b:0c:0d".into()),
                addresses: vec![
                    ("203.0.113.7".parse().unwrap_or(IpAddr::from([0; 4])), 32),
                    (
                        "fe80::9400:aff:fe0b:c0d"
                            .parse()
                            .unwrap_or(IpAddr::from([0; 4])),
                        64,
                    ),
                ],
            }],
            gateways: Vec::new(),
        }
    }

    fn infect(address: &str, mac: &str) -> Network {
        let json = serde_json::json!({
            "useDHCP": true, "dhcpcd": false, "useNetworkd": false, "predictableNames": false,
            "interfaces": { "eth0": { "useDHCP": null, "addresses": [
                { "address": address, "prefixLength": 32 },
                { "address": "fe80::9400:ff:fe12:3456", "prefixLength": 64 } ] } },
            "networks": {},
            "udevRules": format!("ATTR{{address}}==\"{mac}\", NAME=\"eth0\"\n"),
        });
        serde_json::from_value(json).unwrap_or_default()
    }

    fn nowhere(_: &str, _: bool) -> Option<Place> {
        None
    }

    #[test]
    fn the_old_servers_static_address_is_refused_and_this_machines_passes() {
        let old = judge_network(
            &infect("198.51.100.9", "96:00:01:02:03:04"),
            &machine(),
            &[],
            &nowhere,
        );
        assert_eq!(old.blockers.len(), 1, "{:?}", old.blockers);
        assert!(old.blockers[0].problem.contains("198.51.100.9/32"));
        // With the card's record of the old server, the blocker says whose address it is.
        let named = judge_network(
            &infect("198.51.100.9", "96:00:01:02:03:04"),
            &machine(),
            &["198.51.100.9".parse().unwrap_or(IpAddr::from([0; 4]))],
            &nowhere,
        );
        assert!(
            named.blockers[0].problem.contains(
                "which is the old server's (the recovery card records it), not this machine's"
            ),
            "{:?}",
            named.blockers
        );
        assert!(old.blockers[0].problem.contains("203.0.113.7/32 on eth0"));
        // The link-local address and the MAC rule of the old server are warnings.
        assert_eq!(old.warnings.len(), 2, "{:?}", old.warnings);
        assert!(old.fixable);
        let fixes: Vec<(&str, &str)> = old
            .fixes
            .iter()
            .map(|f| (f.old.as_str(), f.new.as_str()))
            .collect();
        assert_eq!(
            fixes,
            [
                ("198.51.100.9", "203.0.113.7"),
                ("fe80::9400:ff:fe12:3456", "fe80::9400:aff:fe0b:c0d"),
                ("96:00:01:02:03:04", "96:00:0a:0b:0c:0d"),
            ]
        );
        let same = judge_network(
            &infect("203.0.113.7", "96:00:0a:0b:0c:0d"),
            &machine(),
            &[],
            &nowhere,
        );
        assert!(same.blockers.is_empty(), "{:?}", same.blockers);
    }

    #[test]
    fn an_interface_named_after_a_missing_mac_is_refused_when_it_is_the_only_way_in() {
        let mut net = infect("203.0.113.7", "96:00:01:02:03:04");
        net.udev_rules = Some(
            "SUBSYSTEM==\"net\", ATTR{address}==\"96:00:01:02:03:04\", NAME=\"wan0\"\n".into(),
        );
        let iface = net.interfaces.remove("eth0").unwrap_or_default();
        net.interfaces.insert("wan0".into(), iface);
        let judged = judge_network(&net, &machine(), &[], &nowhere);
        assert_eq!(judged.blockers.len(), 1, "{:?}", judged.blockers);
        assert!(judged.blockers[0].problem.contains("wan0"));
        assert!(judged.blockers[0].nix.contains("96:00:0a:0b:0c:0d"));
    }

    #[test]
    fn networkd_networks_are_matched_by_name_or_mac() {
        let net = |matching: serde_json::Value| -> Network {
            serde_json::from_value(serde_json::json!({
                "useDHCP": false, "useNetworkd": true,
                "networks": { "10-wan": {
                    "name": matching["name"], "mac": matching["mac"],
                    "address": ["198.51.100.9/32", "fe80::1/64"], "dhcp": "no" } },
            }))
            .unwrap_or_default()
        };
        let by_name = judge_network(
            &net(serde_json::json!({ "name": "eth0" })),
            &machine(),
            &[],
            &nowhere,
        );
        assert_eq!(by_name.blockers.len(), 1, "{:?}", by_name.blockers);
        assert!(
            by_name.blockers[0]
                .problem
                .contains("systemd.network.networks.10-wan")
        );
        assert_eq!(by_name.fixes[0].new, "203.0.113.7/32");
        // Matched by a MAC this machine lacks, it is no way in at all.
        let by_mac = judge_network(
            &net(serde_json::json!({ "mac": "96:00:01:02:03:04" })),
            &machine(),
            &[],
            &nowhere,
        );
        assert!(
            by_mac
                .blockers
                .iter()
                .any(|b| b.problem.contains("no interface"))
        );
        assert!(!by_mac.fixable);
    }

    #[test]
    fn a_gateway_that_is_not_this_machines_is_a_warning_and_part_of_the_fix() {
        let mut net = infect("198.51.100.9", "96:00:0a:0b:0c:0d");
        net.default_gateway = Some("172.31.1.254".into());
        net.default_gateway6 = Some("fe80::1".into());
        let mut here = machine();
        here.gateways = vec![
            IpAddr::from([172, 31, 1, 1]),
            "fe80::1".parse().unwrap_or(IpAddr::from([0; 4])),
        ];
        let judged = judge_network(&net, &here, &[], &nowhere);
        assert!(
            judged
                .warnings
                .iter()
                .any(|w| w.contains("172.31.1.254") && w.contains("via 172.31.1.1"))
        );
        assert!(
            !judged
                .warnings
                .iter()
                .any(|w| w.contains("defaultGateway6"))
        );
        assert!(judged.fixes.contains(&Fix {
            old: "172.31.1.254".into(),
            new: "172.31.1.1".into(),
            whole: true
        }));
    }

    #[test]
    fn dhcp_is_a_way_in_and_nothing_is_not() {
        let dhcp: Network = serde_json::from_value(serde_json::json!({})).unwrap_or_default();
        assert!(
            judge_network(&dhcp, &machine(), &[], &nowhere)
                .blockers
                .is_empty()
        );
        let off: Network =
            serde_json::from_value(serde_json::json!({ "useDHCP": false })).unwrap_or_default();
        let judged = judge_network(&off, &machine(), &[], &nowhere);
        assert_eq!(judged.blockers.len(), 1);
        assert!(judged.blockers[0].problem.contains("no interface"));
    }

    #[test]
    fn sshd_off_a_closed_port_and_no_keys_are_refused() {
        let login = |json| serde_json::from_value::<Login>(json).unwrap_or_default();
        assert_eq!(
            judge_login(&login(serde_json::json!({})), Some("qwe"), 0).len(),
            1
        );
        let open = login(serde_json::json!({ "sshd": true }));
        assert!(judge_login(&open, Some("qwe"), 0).is_empty());
        let closed = login(serde_json::json!({
            "sshd": true, "ports": [2222], "openFirewall": false, "allowedPorts": [22, 80] }));
        assert!(
            judge_login(&closed, Some("qwe"), 0)[0]
                .problem
                .contains("2222")
        );
        let ranged = login(serde_json::json!({
            "sshd": true, "ports": [2222], "openFirewall": false, "allowedRanges": [{ "from": 2000, "to": 3000 }] }));
        assert!(judge_login(&ranged, Some("qwe"), 0).is_empty());
        let keyless = login(serde_json::json!({
            "sshd": true, "passwordAuthentication": false, "keys": { "root": 0, "qwe": 0 } }));
        assert!(
            judge_login(&keyless, Some("qwe"), 0)[0]
                .problem
                .contains("root nor qwe")
        );
        let keyed = login(serde_json::json!({
            "sshd": true, "passwordAuthentication": false, "keys": { "root": 0, "qwe": 1 } }));
        assert!(judge_login(&keyed, Some("qwe"), 0).is_empty());
        assert!(judge_login(&keyless, Some("qwe"), 1).is_empty());
    }

    #[test]
    fn macs_come_back_from_link_local_addresses_and_udev_rules() {
        let address: Ipv6Addr = "fe80::9400:ff:fe12:3456"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        assert_eq!(eui64_mac(address).as_deref(), Some("96:00:00:12:34:56"));
        assert_eq!(
            mac_rules("ATTR{address}==\"96:00:AA:bb:cc:dd\", NAME=\"eth0\"\n# none\n"),
            vec![("96:00:AA:bb:cc:dd".to_string(), "eth0".to_string())]
        );
        assert!(!is_public(
            "10.0.0.1".parse().unwrap_or(IpAddr::from([1; 4]))
        ));
        assert!(is_public(
            "2a01:4f8::1".parse().unwrap_or(IpAddr::from([0; 4]))
        ));
        assert!(!is_public(
            "fe80::1".parse().unwrap_or(IpAddr::from([1; 4]))
        ));
    }
}
