//! Property: export → import → export of any policy set is byte-identical, and the parsed
//! set equals the original.

use std::net::IpAddr;

use ipsec_policy::file::{export, parse};
use ipsec_policy::*;
use proptest::prelude::*;
use uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn version() -> impl Strategy<Value = u64> {
    0..=i64::MAX as u64
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn encryption() -> impl Strategy<Value = Encryption> {
    prop_oneof![
        Just(Encryption::Des),
        Just(Encryption::TripleDes),
        Just(Encryption::Aes128),
        Just(Encryption::Aes192),
        Just(Encryption::Aes256),
        Just(Encryption::Aes128Gcm16),
        Just(Encryption::Aes256Gcm16)
    ]
}

fn integrity() -> impl Strategy<Value = Integrity> {
    prop_oneof![
        Just(Integrity::Md5),
        Just(Integrity::Sha1),
        Just(Integrity::Sha256),
        Just(Integrity::Sha384),
        Just(Integrity::Sha512)
    ]
}

fn dh() -> impl Strategy<Value = DhGroup> {
    use DhGroup::*;
    prop::sample::select(vec![
        Group1, Group2, Group5, Group14, Group15, Group16, Group17, Group18, Group19, Group20,
        Group21,
    ])
}

fn qm() -> impl Strategy<Value = QuickModeMethod> {
    (
        prop::option::of(integrity()),
        prop::option::of((
            prop::option::of(encryption()),
            prop::option::of(integrity()),
        )),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(ah, esp, lifetime_kb, lifetime_seconds)| QuickModeMethod {
            ah,
            esp: esp.map(|(encryption, integrity)| EspTransform {
                encryption,
                integrity,
            }),
            lifetime_kb,
            lifetime_seconds,
        })
}

fn auth() -> impl Strategy<Value = AuthMethod> {
    prop_oneof![
        Just(AuthMethod::Kerberos),
        (text(), any::<bool>(), any::<bool>()).prop_map(|(ca, exclude_ca_name, map_to_account)| {
            AuthMethod::Certificate {
                ca,
                exclude_ca_name,
                map_to_account,
            }
        }),
        text().prop_map(|k| AuthMethod::PresharedKey {
            key: PresharedKey::Secret(Secret::new(k))
        }),
        Just(AuthMethod::PresharedKey {
            key: PresharedKey::Redacted
        }),
    ]
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
        any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
    ]
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    prop_oneof![
        Just(Endpoint::Any),
        Just(Endpoint::MyAddress),
        Just(Endpoint::Dns),
        Just(Endpoint::Dhcp),
        Just(Endpoint::Wins),
        Just(Endpoint::DefaultGateway),
        addr().prop_map(Endpoint::Address),
        (addr(), 0u8..=128).prop_map(|(a, len)| {
            let len = len.min(max_prefix(a));
            Endpoint::Subnet(Subnet::new(mask_addr(a, len), len).expect("masked"))
        }),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Any), any::<u8>().prop_map(Protocol::Number)]
}

fn filter() -> impl Strategy<Value = Filter> {
    (
        uuid(),
        version(),
        text(),
        endpoint(),
        endpoint(),
        any::<bool>(),
        protocol(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(
            |(id, version, description, source, destination, mirrored, protocol, sp, dp)| Filter {
                id,
                version,
                description,
                source,
                destination,
                mirrored,
                protocol,
                source_port: sp,
                destination_port: dp,
            },
        )
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        (uuid(), version(), text(), text(), any::<bool>()),
        (uuid(), uuid()),
        prop::collection::vec(auth(), 0..3),
        prop::option::of(endpoint()),
        prop::sample::select(vec![
            ConnectionType::All,
            ConnectionType::Lan,
            ConnectionType::RemoteAccess,
        ]),
    )
        .prop_map(
            |(
                (id, version, name, description, active),
                (filter_list, filter_action),
                auth_methods,
                tunnel_endpoint,
                connection_type,
            )| Rule {
                id,
                version,
                name,
                description,
                active,
                filter_list,
                filter_action,
                auth_methods,
                tunnel_endpoint,
                connection_type,
            },
        )
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        (uuid(), version(), text(), text(), any::<u32>()),
        (
            uuid(),
            version(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            prop::collection::vec((encryption(), integrity(), dh()), 0..3),
        ),
        prop::collection::vec(rule(), 0..3),
        (
            uuid(),
            version(),
            any::<bool>(),
            prop::collection::vec(auth(), 0..3),
            prop::collection::vec(qm(), 0..3),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((id, version, name, description, poll), isakmp, rules, dr)| Policy {
                id,
                version,
                name,
                description,
                polling_interval_minutes: poll,
                isakmp: IsakmpPolicy {
                    id: isakmp.0,
                    version: isakmp.1,
                    master_key_lifetime_minutes: isakmp.2,
                    quick_modes_per_main_mode: isakmp.3,
                    master_key_pfs: isakmp.4,
                    methods: isakmp
                        .5
                        .into_iter()
                        .map(|(encryption, integrity, dh_group)| MainModeMethod {
                            encryption,
                            integrity,
                            dh_group,
                        })
                        .collect(),
                },
                rules,
                default_response: DefaultResponseRule {
                    id: dr.0,
                    version: dr.1,
                    active: dr.2,
                    auth_methods: dr.3,
                    methods: dr.4,
                    qm_pfs: dr.5,
                },
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Permit),
        Just(Action::Block),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(qm(), 0..3),
            any::<bool>(),
        )
            .prop_map(
                |(inbound_pass_through, fall_back_to_clear, qm_pfs, methods, offload)| {
                    Action::Negotiate(Negotiation {
                        inbound_pass_through,
                        fall_back_to_clear,
                        qm_pfs,
                        methods,
                        offload,
                    })
                }
            ),
    ]
}

fn policy_set() -> impl Strategy<Value = PolicySet> {
    (
        prop::collection::vec(policy(), 0..3),
        prop::collection::vec(
            (
                uuid(),
                version(),
                text(),
                text(),
                prop::collection::vec(filter(), 0..4),
            )
                .prop_map(|(id, version, name, description, filters)| FilterList {
                    id,
                    version,
                    name,
                    description,
                    filters,
                }),
            0..3,
        ),
        prop::collection::vec(
            (uuid(), version(), text(), text(), action()).prop_map(
                |(id, version, name, description, action)| FilterAction {
                    id,
                    version,
                    name,
                    description,
                    action,
                },
            ),
            0..3,
        ),
    )
        .prop_map(|(policies, filter_lists, filter_actions)| PolicySet {
            policies,
            filter_lists,
            filter_actions,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn export_import_export_is_byte_identical(set in policy_set()) {
        let text = export(&set, ExportKeys::Include).expect("export");
        let back = parse(&text).expect("parse");
        prop_assert_eq!(&back, &set);
        prop_assert_eq!(export(&back, ExportKeys::Include).expect("export again"), text);
    }

    #[test]
    fn redacted_export_round_trips_too(set in policy_set()) {
        let text = export(&set, ExportKeys::Redact).expect("export");
        let back = parse(&text).expect("parse");
        prop_assert_eq!(&back, &set.redacted());
        prop_assert_eq!(export(&back, ExportKeys::Redact).expect("export again"), text);
    }
}
