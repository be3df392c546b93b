//! The embedded default store: what a fresh local store holds.
//!
//! Windows Server 2003 ships three default policies, none assigned: Client (Respond Only),
//! Server (Request Security) and Secure Server (Require Security), built from the filter
//! lists "All IP Traffic" and "All ICMP Traffic" and the filter actions "Permit",
//! "Request Security (Optional)" and "Require Security", with the settings Windows gives
//! them (180-minute polling; main mode 3DES/SHA1/2, 3DES/MD5/2, DES/SHA1/1, DES/MD5/1 for
//! 480 minutes; Kerberos; the default response rule active with the seed's default
//! security methods).
//!
//! It adds the lab policies of the seed's walk-through ("block telnet from every computer;
//! negotiate telnet with the other computer using a preshared key"), for the kernel lab's
//! hosts h1 ("Andy", 192.0.2.11) and h2 ("Betty", 192.0.2.12). Their preshared key is a
//! published demo value: never use the lab policies outside the lab.
//!
//! GUIDs are fixed so that every store starts with the same objects. No I/O.

use std::net::{IpAddr, Ipv4Addr};

use uuid::Uuid;

use crate::model::*;

/// Name of the Client (Respond Only) policy.
pub const CLIENT: &str = "Client (Respond Only)";
/// Name of the Server (Request Security) policy.
pub const SERVER: &str = "Server (Request Security)";
/// Name of the Secure Server (Require Security) policy.
pub const SECURE_SERVER: &str = "Secure Server (Require Security)";
/// Name of the lab policy for h1 ("Andy").
pub const LAB_ANDY: &str = "Lab: Andy (block telnet, negotiate with Betty)";
/// Name of the lab policy for h2 ("Betty").
pub const LAB_BETTY: &str = "Lab: Betty (negotiate telnet with Andy)";
/// The lab policies' published demo key.
pub const LAB_PRESHARED_KEY: &str = "lab-demo-key-not-secret";

/// The lab address of h1 ("Andy").
pub const LAB_ANDY_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// The lab address of h2 ("Betty").
pub const LAB_BETTY_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);

// Fixed GUIDs: 1ec5xxxx-... is this crate's default-store namespace.
const fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1ec5_0000_0000_4000_8000_0000_0000_0000 | n)
}

const LIST_ALL_IP: Uuid = id(0x101);
const LIST_ALL_ICMP: Uuid = id(0x102);
const LIST_TELNET_ALL: Uuid = id(0x103);
const LIST_TELNET_FROM_BETTY: Uuid = id(0x104);
const LIST_TELNET_TO_ANDY: Uuid = id(0x105);
const ACTION_PERMIT: Uuid = id(0x201);
const ACTION_REQUEST: Uuid = id(0x202);
const ACTION_REQUIRE: Uuid = id(0x203);
const ACTION_BLOCK: Uuid = id(0x204);
const ACTION_LAB_NEGOTIATE: Uuid = id(0x205);

/// The whole default store.
pub fn default_store() -> PolicySet {
    PolicySet {
        policies: vec![client(), server(), secure_server(), lab_andy(), lab_betty()],
        filter_lists: filter_lists(),
        filter_actions: filter_actions(),
    }
}

fn mm_methods() -> Vec<MainModeMethod> {
    use {DhGroup::*, Encryption::*, Integrity::*};
    [
        (TripleDes, Sha1, Group2),
        (TripleDes, Md5, Group2),
        (Des, Sha1, Group1),
        (Des, Md5, Group1),
    ]
    .into_iter()
    .map(|(encryption, integrity, dh_group)| MainModeMethod {
        encryption,
        integrity,
        dh_group,
    })
    .collect()
}

/// The seed's "Default Security Methods for the Default Response Rule".
fn default_response_methods() -> Vec<QuickModeMethod> {
    use {Encryption::*, Integrity::*};
    vec![
        QuickModeMethod::esp(TripleDes, Sha1),
        QuickModeMethod::esp(TripleDes, Md5),
        QuickModeMethod::esp(Des, Sha1),
        QuickModeMethod::esp(Des, Md5),
        QuickModeMethod::ah(Sha1),
        QuickModeMethod::ah(Md5),
    ]
}

fn esp_methods() -> Vec<QuickModeMethod> {
    use {Encryption::*, Integrity::*};
    vec![
        QuickModeMethod::esp(TripleDes, Sha1),
        QuickModeMethod::esp(TripleDes, Md5),
        QuickModeMethod::esp(Des, Sha1),
        QuickModeMethod::esp(Des, Md5),
    ]
}

fn policy(
    n: u128,
    name: &str,
    description: &str,
    rules: Vec<Rule>,
    auth: Vec<AuthMethod>,
) -> Policy {
    Policy {
        id: id(n),
        version: 1,
        name: name.into(),
        description: description.into(),
        polling_interval_minutes: DEFAULT_POLLING_MINUTES,
        isakmp: IsakmpPolicy {
            id: id(n | 0x1_0000),
            version: 1,
            master_key_lifetime_minutes: DEFAULT_MM_LIFETIME_MINUTES,
            quick_modes_per_main_mode: 0,
            master_key_pfs: false,
            methods: mm_methods(),
        },
        rules,
        default_response: DefaultResponseRule {
            id: id(n | 0x2_0000),
            version: 1,
            active: true,
            auth_methods: auth,
            methods: default_response_methods(),
            qm_pfs: false,
        },
    }
}

fn rule(n: u128, name: &str, list: Uuid, action: Uuid, auth: Vec<AuthMethod>) -> Rule {
    Rule {
        id: id(n),
        version: 1,
        name: name.into(),
        description: String::new(),
        active: true,
        filter_list: list,
        filter_action: action,
        auth_methods: auth,
        tunnel_endpoint: None,
        connection_type: ConnectionType::All,
    }
}

fn lab_key() -> Vec<AuthMethod> {
    vec![AuthMethod::PresharedKey {
        key: PresharedKey::Secret(Secret::new(LAB_PRESHARED_KEY)),
    }]
}

fn client() -> Policy {
    policy(
        0x301,
        CLIENT,
        "Communicate normally (unsecured). Use the default response rule to negotiate with \
         servers that request security. Only the requested protocol and port traffic with \
         that server is secured.",
        vec![],
        vec![AuthMethod::Kerberos],
    )
}

fn server() -> Policy {
    policy(
        0x302,
        SERVER,
        "For all IP traffic, always request security using Kerberos trust. Allow unsecured \
         communication with clients that do not respond to request.",
        vec![
            rule(
                0x401,
                "All IP Traffic",
                LIST_ALL_IP,
                ACTION_REQUEST,
                vec![AuthMethod::Kerberos],
            ),
            rule(
                0x402,
                "All ICMP Traffic",
                LIST_ALL_ICMP,
                ACTION_PERMIT,
                vec![AuthMethod::Kerberos],
            ),
        ],
        vec![AuthMethod::Kerberos],
    )
}

fn secure_server() -> Policy {
    policy(
        0x303,
        SECURE_SERVER,
        "For all IP traffic, always require security using Kerberos trust. Do not allow \
         unsecured communication with untrusted clients.",
        vec![
            rule(
                0x403,
                "All IP Traffic",
                LIST_ALL_IP,
                ACTION_REQUIRE,
                vec![AuthMethod::Kerberos],
            ),
            rule(
                0x404,
                "All ICMP Traffic",
                LIST_ALL_ICMP,
                ACTION_PERMIT,
                vec![AuthMethod::Kerberos],
            ),
        ],
        vec![AuthMethod::Kerberos],
    )
}

fn lab_andy() -> Policy {
    let mut p = policy(
        0x304,
        LAB_ANDY,
        "Kernel lab h1: block telnet from every computer, negotiate telnet with h2 (Betty) \
         using the lab's preshared key.",
        vec![
            rule(0x405, "Block telnet", LIST_TELNET_ALL, ACTION_BLOCK, vec![]),
            rule(
                0x406,
                "Negotiate telnet with Betty",
                LIST_TELNET_FROM_BETTY,
                ACTION_LAB_NEGOTIATE,
                lab_key(),
            ),
        ],
        lab_key(),
    );
    p.default_response.active = false;
    p
}

fn lab_betty() -> Policy {
    let mut p = policy(
        0x305,
        LAB_BETTY,
        "Kernel lab h2: negotiate telnet to h1 (Andy) using the lab's preshared key.",
        vec![rule(
            0x407,
            "Negotiate telnet with Andy",
            LIST_TELNET_TO_ANDY,
            ACTION_LAB_NEGOTIATE,
            lab_key(),
        )],
        lab_key(),
    );
    p.default_response.active = false;
    p
}

fn filter(
    n: u128,
    description: &str,
    source: Endpoint,
    destination: Endpoint,
    protocol: Protocol,
    dport: u16,
) -> Filter {
    Filter {
        id: id(n),
        version: 1,
        description: description.into(),
        source,
        destination,
        mirrored: true,
        protocol,
        source_port: 0,
        destination_port: dport,
    }
}

fn filter_lists() -> Vec<FilterList> {
    let andy = Endpoint::Address(IpAddr::V4(LAB_ANDY_ADDR));
    let betty = Endpoint::Address(IpAddr::V4(LAB_BETTY_ADDR));
    let list = |n: u128, name: &str, description: &str, filters| FilterList {
        id: id(n),
        version: 1,
        name: name.into(),
        description: description.into(),
        filters,
    };
    let mut block_telnet = filter(
        0x501,
        "telnet from anywhere",
        Endpoint::Any,
        Endpoint::MyAddress,
        Protocol::TCP,
        23,
    );
    // Inbound only: this computer's own telnet clients are not blocked.
    block_telnet.mirrored = false;
    vec![
        list(
            0x101,
            "All IP Traffic",
            "Matches all IP packets from this computer to any other computer, except broadcast, \
             multicast, Kerberos, RSVP and ISAKMP (IKE).",
            vec![filter(
                0x502,
                "",
                Endpoint::MyAddress,
                Endpoint::Any,
                Protocol::Any,
                0,
            )],
        ),
        list(
            0x102,
            "All ICMP Traffic",
            "Matches all ICMP packets between this computer and any other computer.",
            vec![filter(
                0x503,
                "",
                Endpoint::MyAddress,
                Endpoint::Any,
                Protocol::ICMP,
                0,
            )],
        ),
        list(
            0x103,
            "All Telnet Traffic",
            "Inbound telnet from any computer.",
            vec![block_telnet],
        ),
        list(
            0x104,
            "Telnet from Betty",
            "Telnet from the lab host h2 (Betty) to this computer.",
            vec![filter(
                0x504,
                "telnet from Betty",
                betty,
                Endpoint::MyAddress,
                Protocol::TCP,
                23,
            )],
        ),
        list(
            0x105,
            "Telnet to Andy",
            "Telnet from this computer to the lab host h1 (Andy).",
            vec![filter(
                0x505,
                "telnet to Andy",
                Endpoint::MyAddress,
                andy,
                Protocol::TCP,
                23,
            )],
        ),
    ]
}

fn filter_actions() -> Vec<FilterAction> {
    let action = |n: u128, name: &str, description: &str, action| FilterAction {
        id: id(n),
        version: 1,
        name: name.into(),
        description: description.into(),
        action,
    };
    let mut request = esp_methods();
    request.extend([
        QuickModeMethod::ah(Integrity::Sha1),
        QuickModeMethod::ah(Integrity::Md5),
    ]);
    vec![
        action(
            0x201,
            "Permit",
            "Permit unsecured IP packets to pass through.",
            Action::Permit,
        ),
        action(
            0x202,
            "Request Security (Optional)",
            "Accepts unsecured communication, but requests clients to establish trust and \
             security methods. Will communicate insecurely to untrusted clients if they do not \
             respond to request.",
            Action::Negotiate(Negotiation {
                inbound_pass_through: true,
                fall_back_to_clear: true,
                qm_pfs: false,
                offload: false,
                methods: request,
            }),
        ),
        action(
            0x203,
            "Require Security",
            "Accepts unsecured communication, but always requires clients to establish trust \
             and security methods. Will NOT communicate with untrusted clients.",
            Action::Negotiate(Negotiation {
                inbound_pass_through: true,
                fall_back_to_clear: false,
                qm_pfs: false,
                offload: false,
                methods: esp_methods(),
            }),
        ),
        action(0x204, "Block", "Drop matching packets.", Action::Block),
        action(
            0x205,
            "Lab: Require ESP",
            "Negotiate ESP only; no clear text in either direction.",
            Action::Negotiate(Negotiation {
                inbound_pass_through: false,
                fall_back_to_clear: false,
                qm_pfs: false,
                offload: false,
                methods: {
                    use {Encryption::*, Integrity::*};
                    vec![
                        QuickModeMethod::esp(Aes128, Sha1),
                        QuickModeMethod::esp(TripleDes, Sha1),
                    ]
                },
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_store_is_valid() {
        if let Err(e) = crate::validate(&default_store()) {
            panic!("{e}");
        }
    }

    #[test]
    fn default_store_has_the_three_windows_policies_and_the_lab() {
        let set = default_store();
        for name in [CLIENT, SERVER, SECURE_SERVER, LAB_ANDY, LAB_BETTY] {
            assert!(set.policy_by_name(name).is_some(), "{name}");
        }
        let client = set
            .policy_by_name(CLIENT)
            .map(|p| (p.rules.len(), p.default_response.active));
        assert_eq!(client, Some((0, true)));
    }
}
