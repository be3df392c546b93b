//! The exemption decision. This file is self-contained (it uses nothing outside `core`)
//! because it is compiled twice: as a module of the `ipsec-exempt` crate and, included by
//! path, into the kernel module's Rust object (`kmod/ipsec_exempt_main.rs`). Keep it that way.

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of RSVP.
pub const PROTO_RSVP: u8 = 46;
/// ISAKMP's UDP port (both source and destination, per the seed's table).
pub const PORT_ISAKMP: u16 = 500;
/// IKE over NAT-T: UDP port 4500 (both source and destination).
pub const PORT_NAT_T: u16 = 4500;
/// Kerberos: TCP or UDP port 88, as source or as destination.
pub const PORT_KERBEROS: u16 = 88;

/// IP version of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
    /// IPv4.
    V4 = 4,
    /// IPv6.
    V6 = 6,
}

/// What kind of address the destination is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Destination {
    /// Any other address.
    Unicast = 0,
    /// 255.255.255.255.
    LimitedBroadcast = 1,
    /// The subnet broadcast address of an interface (host part all ones).
    DirectedBroadcast = 2,
    /// 224.0.0.0/4 or ff00::/8.
    Multicast = 3,
}

impl Destination {
    /// From its `repr(u8)` value (the kernel shim's encoding).
    pub const fn from_u8(v: u8) -> Option<Destination> {
        match v {
            0 => Some(Destination::Unicast),
            1 => Some(Destination::LimitedBroadcast),
            2 => Some(Destination::DirectedBroadcast),
            3 => Some(Destination::Multicast),
            _ => None,
        }
    }
}

/// The header facts the decision needs. Ports are 0 for protocols without ports and
/// for non-first fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Facts {
    /// IP version.
    pub family: Family,
    /// IP protocol (IPv4) or upper-layer next header (IPv6).
    pub protocol: u8,
    /// TCP/UDP source port, host order.
    pub src_port: u16,
    /// TCP/UDP destination port, host order.
    pub dst_port: u16,
    /// Destination address class.
    pub destination: Destination,
}

/// The class that exempts a packet. The discriminant is the counter index used by the
/// kernel module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Class {
    /// UDP 500 → 500.
    Isakmp = 0,
    /// UDP 4500 → 4500 (NAT-T).
    IsakmpNatT = 1,
    /// TCP or UDP with source or destination port 88.
    Kerberos = 2,
    /// IP protocol 46.
    Rsvp = 3,
    /// Multicast destination.
    Multicast = 4,
    /// Limited or directed broadcast destination.
    Broadcast = 5,
    /// Any IPv6 packet, with [`Ipv6Mode::ExemptAll`].
    Ipv6 = 6,
}

impl Class {
    /// Every class, in counter order.
    pub const ALL: [Class; 7] = [
        Class::Isakmp,
        Class::IsakmpNatT,
        Class::Kerberos,
        Class::Rsvp,
        Class::Multicast,
        Class::Broadcast,
        Class::Ipv6,
    ];

    /// Short name (counter and log name).
    pub const fn name(self) -> &'static str {
        match self {
            Class::Isakmp => "isakmp",
            Class::IsakmpNatT => "isakmp_natt",
            Class::Kerberos => "kerberos",
            Class::Rsvp => "rsvp",
            Class::Multicast => "multicast",
            Class::Broadcast => "broadcast",
            Class::Ipv6 => "ipv6",
        }
    }

    /// This class's bit in a [`Level::mask`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    const fn from_index(i: u32) -> Class {
        match i {
            0 => Class::Isakmp,
            1 => Class::IsakmpNatT,
            2 => Class::Kerberos,
            3 => Class::Rsvp,
            4 => Class::Multicast,
            5 => Class::Broadcast,
            _ => Class::Ipv6,
        }
    }
}

const ISAKMP: u8 = Class::Isakmp.bit() | Class::IsakmpNatT.bit();
const KERBEROS_RSVP: u8 = Class::Kerberos.bit() | Class::Rsvp.bit();
const MULTI_BROADCAST: u8 = Class::Multicast.bit() | Class::Broadcast.bit();

/// The exemption level (`ipsecexempt` / `NoDefaultExempt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Level {
    /// 0: multicast, broadcast, RSVP, Kerberos and ISAKMP are exempt.
    L0 = 0,
    /// 1: multicast, broadcast and ISAKMP are exempt.
    L1 = 1,
    /// 2: RSVP, Kerberos and ISAKMP are exempt.
    L2 = 2,
    /// 3: only ISAKMP is exempt (the default).
    #[default]
    L3 = 3,
}

impl Level {
    /// Every level.
    pub const ALL: [Level; 4] = [Level::L0, Level::L1, Level::L2, Level::L3];

    /// From the numeric setting; `None` above 3.
    pub const fn from_u32(v: u32) -> Option<Level> {
        match v {
            0 => Some(Level::L0),
            1 => Some(Level::L1),
            2 => Some(Level::L2),
            3 => Some(Level::L3),
            _ => None,
        }
    }

    /// The numeric setting.
    pub const fn value(self) -> u32 {
        self as u32
    }

    /// The classes exempt at this level, as [`Class::bit`]s (IPv6 not included: that is
    /// the [`Ipv6Mode`]'s business).
    pub const fn mask(self) -> u8 {
        match self {
            Level::L0 => ISAKMP | KERBEROS_RSVP | MULTI_BROADCAST,
            Level::L1 => ISAKMP | MULTI_BROADCAST,
            Level::L2 => ISAKMP | KERBEROS_RSVP,
            Level::L3 => ISAKMP,
        }
    }

    /// Whether `class` is exempt at this level (IPv6: see [`Ipv6Mode`]).
    pub const fn exempts(self, class: Class) -> bool {
        self.mask() & class.bit() != 0
    }
}

/// How IPv6 packets are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Ipv6Mode {
    /// The same table as IPv4 (multicast is ff00::/8; IPv6 has no broadcast). The default:
    /// this stack does filter IPv6.
    #[default]
    Classify = 0,
    /// Every IPv6 packet is exempt at every level, as in the seed ("IPSec does not support
    /// filtering for IPv6 packets").
    ExemptAll = 1,
}

impl Ipv6Mode {
    /// From its `repr(u8)` value.
    pub const fn from_u32(v: u32) -> Option<Ipv6Mode> {
        match v {
            0 => Some(Ipv6Mode::Classify),
            1 => Some(Ipv6Mode::ExemptAll),
            _ => None,
        }
    }
}

/// The decision for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Not subject to IPsec filtering, because of this class (the first matching one in
    /// [`Class`] order).
    Exempt(Class),
    /// The IPsec policy decides.
    SubjectToPolicy,
}

/// Every class the packet belongs to, whatever the level, as [`Class::bit`]s.
#[inline]
pub const fn matching(f: &Facts) -> u8 {
    let mut m = 0u8;
    let udp = f.protocol == PROTO_UDP;
    if udp && f.src_port == PORT_ISAKMP && f.dst_port == PORT_ISAKMP {
        m |= Class::Isakmp.bit();
    }
    if udp && f.src_port == PORT_NAT_T && f.dst_port == PORT_NAT_T {
        m |= Class::IsakmpNatT.bit();
    }
    if (udp || f.protocol == PROTO_TCP)
        && (f.src_port == PORT_KERBEROS || f.dst_port == PORT_KERBEROS)
    {
        m |= Class::Kerberos.bit();
    }
    if f.protocol == PROTO_RSVP {
        m |= Class::Rsvp.bit();
    }
    m |= match f.destination {
        Destination::Unicast => 0,
        Destination::LimitedBroadcast | Destination::DirectedBroadcast => Class::Broadcast.bit(),
        Destination::Multicast => Class::Multicast.bit(),
    };
    if matches!(f.family, Family::V6) {
        m |= Class::Ipv6.bit();
    }
    m
}

/// Decides whether the packet is exempt at `level`.
#[inline]
pub const fn classify(f: &Facts, level: Level, v6: Ipv6Mode) -> Verdict {
    let v6_bit = match v6 {
        Ipv6Mode::Classify => 0,
        Ipv6Mode::ExemptAll => Class::Ipv6.bit(),
    };
    let hit = matching(f) & (level.mask() | v6_bit);
    if hit == 0 {
        Verdict::SubjectToPolicy
    } else {
        Verdict::Exempt(Class::from_index(hit.trailing_zeros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(family: Family, protocol: u8, sp: u16, dp: u16, d: Destination) -> Facts {
        Facts {
            family,
            protocol,
            src_port: sp,
            dst_port: dp,
            destination: d,
        }
    }

    /// The seed's table, written out row by row: (class, exempt at levels 0, 1, 2, 3).
    const TABLE: [(Class, [bool; 4]); 6] = [
        (Class::Isakmp, [true, true, true, true]),
        (Class::IsakmpNatT, [true, true, true, true]),
        (Class::Kerberos, [true, false, true, false]),
        (Class::Rsvp, [true, false, true, false]),
        (Class::Multicast, [true, true, false, false]),
        (Class::Broadcast, [true, true, false, false]),
    ];

    #[test]
    fn level_masks_follow_the_seed_table() {
        for (class, row) in TABLE {
            for (i, level) in Level::ALL.into_iter().enumerate() {
                assert_eq!(level.exempts(class), row[i], "{class:?} at {level:?}");
            }
        }
        for level in Level::ALL {
            assert!(!level.exempts(Class::Ipv6));
        }
        assert_eq!(Level::default(), Level::L3);
        assert_eq!(Ipv6Mode::default(), Ipv6Mode::Classify);
    }

    #[test]
    fn level_numbers_round_trip_and_reject_above_3() {
        for v in 0..4 {
            assert_eq!(Level::from_u32(v).map(Level::value), Some(v));
        }
        assert_eq!(Level::from_u32(4), None);
        assert_eq!(Level::from_u32(u32::MAX), None);
        assert_eq!(Ipv6Mode::from_u32(2), None);
        for d in 0..4u8 {
            assert_eq!(Destination::from_u8(d).map(|d| d as u8), Some(d));
        }
        assert_eq!(Destination::from_u8(4), None);
    }

    /// One example packet of each class (IPv4 unicast unless the class is about the
    /// destination).
    fn example(class: Class) -> Facts {
        use Destination::*;
        use Family::V4;
        match class {
            Class::Isakmp => facts(V4, PROTO_UDP, 500, 500, Unicast),
            Class::IsakmpNatT => facts(V4, PROTO_UDP, 4500, 4500, Unicast),
            Class::Kerberos => facts(V4, PROTO_UDP, 40000, 88, Unicast),
            Class::Rsvp => facts(V4, PROTO_RSVP, 0, 0, Unicast),
            Class::Multicast => facts(V4, PROTO_UDP, 40000, 9, Multicast),
            Class::Broadcast => facts(V4, PROTO_UDP, 40000, 9, LimitedBroadcast),
            Class::Ipv6 => facts(Family::V6, PROTO_UDP, 40000, 9, Unicast),
        }
    }

    #[test]
    fn each_class_is_exempt_exactly_at_its_levels() {
        for (class, row) in TABLE {
            for (i, level) in Level::ALL.into_iter().enumerate() {
                let want = if row[i] {
                    Verdict::Exempt(class)
                } else {
                    Verdict::SubjectToPolicy
                };
                assert_eq!(
                    classify(&example(class), level, Ipv6Mode::Classify),
                    want,
                    "{class:?} at {level:?}"
                );
            }
        }
    }

    #[test]
    fn kerberos_is_tcp_and_udp_port_88_either_way() {
        use Destination::Unicast;
        use Family::V4;
        for p in [PROTO_TCP, PROTO_UDP] {
            for (sp, dp) in [(88, 40000), (40000, 88), (88, 88)] {
                let f = facts(V4, p, sp, dp, Unicast);
                assert_eq!(
                    classify(&f, Level::L2, Ipv6Mode::Classify),
                    Verdict::Exempt(Class::Kerberos)
                );
                assert_eq!(
                    classify(&f, Level::L3, Ipv6Mode::Classify),
                    Verdict::SubjectToPolicy
                );
            }
        }
        // Port 88 on a protocol without ports (e.g. SCTP 132, ICMP 1) is not Kerberos.
        for p in [1, 132, PROTO_RSVP] {
            let f = facts(V4, p, 88, 88, Unicast);
            assert_ne!(
                classify(&f, Level::L0, Ipv6Mode::Classify),
                Verdict::Exempt(Class::Kerberos)
            );
        }
    }

    #[test]
    fn isakmp_needs_both_ports_and_udp() {
        use Destination::Unicast;
        use Family::V4;
        for (p, sp, dp) in [
            (PROTO_UDP, 500, 40000),
            (PROTO_UDP, 40000, 500),
            (PROTO_UDP, 500, 4500),
            (PROTO_UDP, 4500, 500),
            (PROTO_UDP, 40000, 4500),
            (PROTO_TCP, 500, 500),
            (PROTO_TCP, 4500, 4500),
        ] {
            let f = facts(V4, p, sp, dp, Unicast);
            assert_eq!(
                classify(&f, Level::L3, Ipv6Mode::Classify),
                Verdict::SubjectToPolicy,
                "{f:?}"
            );
        }
    }

    #[test]
    fn broadcast_means_limited_and_directed_multicast_means_class_d() {
        use Family::V4;
        for d in [
            Destination::LimitedBroadcast,
            Destination::DirectedBroadcast,
        ] {
            let f = facts(V4, 1, 0, 0, d);
            assert_eq!(
                classify(&f, Level::L1, Ipv6Mode::Classify),
                Verdict::Exempt(Class::Broadcast)
            );
            assert_eq!(
                classify(&f, Level::L2, Ipv6Mode::Classify),
                Verdict::SubjectToPolicy
            );
        }
        let f = facts(V4, 1, 0, 0, Destination::Multicast);
        assert_eq!(
            classify(&f, Level::L0, Ipv6Mode::Classify),
            Verdict::Exempt(Class::Multicast)
        );
        assert_eq!(
            classify(&f, Level::L3, Ipv6Mode::Classify),
            Verdict::SubjectToPolicy
        );
    }

    #[test]
    fn ipv6_mode_classify_uses_the_table_and_exempt_all_exempts_everything() {
        use Destination::*;
        use Family::V6;
        let control = facts(V6, PROTO_TCP, 40000, 23, Unicast);
        let ike = facts(V6, PROTO_UDP, 500, 500, Unicast);
        let mc = facts(V6, 58, 0, 0, Multicast);
        for level in Level::ALL {
            assert_eq!(
                classify(&control, level, Ipv6Mode::Classify),
                Verdict::SubjectToPolicy
            );
            assert_eq!(
                classify(&control, level, Ipv6Mode::ExemptAll),
                Verdict::Exempt(Class::Ipv6)
            );
            assert_eq!(
                classify(&ike, level, Ipv6Mode::Classify),
                Verdict::Exempt(Class::Isakmp)
            );
            // The more specific class wins the counter.
            assert_eq!(
                classify(&ike, level, Ipv6Mode::ExemptAll),
                Verdict::Exempt(Class::Isakmp)
            );
        }
        assert_eq!(
            classify(&mc, Level::L1, Ipv6Mode::Classify),
            Verdict::Exempt(Class::Multicast)
        );
        assert_eq!(
            classify(&mc, Level::L2, Ipv6Mode::Classify),
            Verdict::SubjectToPolicy
        );
    }

    /// Exhaustive over protocols, a port set that covers every boundary, destinations,
    /// families, levels and modes: the verdict equals a direct reading of the table.
    #[test]
    fn exhaustive_against_the_table_read_literally() {
        let ports = [0u16, 1, 87, 88, 89, 499, 500, 501, 4499, 4500, 4501, 65535];
        let dests = [
            Destination::Unicast,
            Destination::LimitedBroadcast,
            Destination::DirectedBroadcast,
            Destination::Multicast,
        ];
        let mut n = 0u32;
        for family in [Family::V4, Family::V6] {
            for protocol in 0..=255u8 {
                for sp in ports {
                    for dp in ports {
                        for d in dests {
                            let f = facts(family, protocol, sp, dp, d);
                            for level in Level::ALL {
                                for mode in [Ipv6Mode::Classify, Ipv6Mode::ExemptAll] {
                                    assert_eq!(
                                        classify(&f, level, mode),
                                        literal(&f, level, mode),
                                        "{f:?} {level:?} {mode:?}"
                                    );
                                    n += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(n, 2 * 256 * 12 * 12 * 4 * 4 * 2);
    }

    /// The table as prose: a deliberately naive second implementation.
    fn literal(f: &Facts, level: Level, mode: Ipv6Mode) -> Verdict {
        let l = level as u8;
        let udp = f.protocol == 17;
        let tcp = f.protocol == 6;
        if udp && f.src_port == 500 && f.dst_port == 500 {
            return Verdict::Exempt(Class::Isakmp);
        }
        if udp && f.src_port == 4500 && f.dst_port == 4500 {
            return Verdict::Exempt(Class::IsakmpNatT);
        }
        if (l == 0 || l == 2) && (udp || tcp) && (f.src_port == 88 || f.dst_port == 88) {
            return Verdict::Exempt(Class::Kerberos);
        }
        if (l == 0 || l == 2) && f.protocol == 46 {
            return Verdict::Exempt(Class::Rsvp);
        }
        if (l == 0 || l == 1) && f.destination == Destination::Multicast {
            return Verdict::Exempt(Class::Multicast);
        }
        if (l == 0 || l == 1)
            && matches!(
                f.destination,
                Destination::LimitedBroadcast | Destination::DirectedBroadcast
            )
        {
            return Verdict::Exempt(Class::Broadcast);
        }
        if f.family == Family::V6 && mode == Ipv6Mode::ExemptAll {
            return Verdict::Exempt(Class::Ipv6);
        }
        Verdict::SubjectToPolicy
    }

    #[test]
    fn class_names_and_bits_are_distinct() {
        for (i, a) in Class::ALL.into_iter().enumerate() {
            assert_eq!(a as usize, i);
            assert_eq!(Class::from_index(i as u32), a);
            for b in &Class::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_eq!(a.bit() & b.bit(), 0);
            }
        }
    }
}
