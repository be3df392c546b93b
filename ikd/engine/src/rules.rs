//! Which payloads each message may carry, how many, and whether it must be encrypted
//! (strongSwan's `payload_rule_t`, isakmpd's exchange scripts), checked once before any
//! state handler runs.
//!
//! A payload type not listed for a message is rejected with INVALID-PAYLOAD-TYPE; counts
//! outside `min..=max` with PAYLOAD-MALFORMED. Vendor IDs are allowed where RFC 2408 allows
//! them; NAT-D/NAT-OA (RFC 3947 and draft numbers) are accepted and ignored. Payload order
//! (HASH first in quick mode and informational messages) is checked by the handlers, which
//! need the raw chain anyway.

use isakmp::{Payload, PayloadType};

use crate::error::{Error, PeerMisbehaved};

#[derive(Debug, Clone, Copy)]
pub(crate) struct PayloadRule {
    payload: PayloadType,
    min: usize,
    max: usize,
}

impl PayloadRule {
    const fn new(payload: PayloadType, min: usize, max: usize) -> Self {
        Self { payload, min, max }
    }
}

/// The rules for one message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageRules {
    pub(crate) name: &'static str,
    pub(crate) encrypted: bool,
    payloads: &'static [PayloadRule],
}

const MAX_VID: usize = 32;
const MAX_NOTIFY: usize = 16;
const MAX_NAT_D: usize = 8;

use PayloadType as T;

//                  payload type                    min max
/// `HDR, SA [, VID...]` in both directions (MM1, MM2).
pub(crate) const MM_SA: MessageRules = MessageRules {
    name: "main mode SA message",
    encrypted: false,
    payloads: &[
        PayloadRule::new(T::SECURITY_ASSOCIATION, 1, 1),
        PayloadRule::new(T::VENDOR_ID, 0, MAX_VID),
        PayloadRule::new(T::NOTIFICATION, 0, MAX_NOTIFY),
    ],
};

/// `HDR, KE, Nonce [, NAT-D...] [, CR...] [, GSS]` (MM3, MM4).
pub(crate) const MM_KE: MessageRules = MessageRules {
    name: "main mode KE message",
    encrypted: false,
    payloads: &[
        PayloadRule::new(T::KEY_EXCHANGE, 1, 1),
        PayloadRule::new(T::NONCE, 1, 1),
        PayloadRule::new(T::NAT_D, 0, MAX_NAT_D),
        PayloadRule::new(T::NAT_D_DRAFT, 0, MAX_NAT_D),
        PayloadRule::new(T::CERTIFICATE_REQUEST, 0, 8),
        PayloadRule::new(T::GSS, 0, 1),
        PayloadRule::new(T::VENDOR_ID, 0, MAX_VID),
        PayloadRule::new(T::NOTIFICATION, 0, MAX_NOTIFY),
    ],
};

/// `HDR*, ID, HASH | [CERT,] SIG | GSS [, N(INITIAL-CONTACT)]` (MM5, MM6).
pub(crate) const MM_ID: MessageRules = MessageRules {
    name: "main mode ID message",
    encrypted: true,
    payloads: &[
        PayloadRule::new(T::IDENTIFICATION, 1, 1),
        PayloadRule::new(T::HASH, 0, 1),
        PayloadRule::new(T::SIGNATURE, 0, 1),
        PayloadRule::new(T::CERTIFICATE, 0, 8),
        PayloadRule::new(T::GSS, 0, 1),
        PayloadRule::new(T::VENDOR_ID, 0, MAX_VID),
        PayloadRule::new(T::NOTIFICATION, 0, MAX_NOTIFY),
    ],
};

/// `HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] [, NAT-OA...]` and the responder's QM2.
pub(crate) const QM_SA: MessageRules = MessageRules {
    name: "quick mode SA message",
    encrypted: true,
    payloads: &[
        PayloadRule::new(T::HASH, 1, 1),
        PayloadRule::new(T::SECURITY_ASSOCIATION, 1, 1),
        PayloadRule::new(T::NONCE, 1, 1),
        PayloadRule::new(T::KEY_EXCHANGE, 0, 1),
        PayloadRule::new(T::IDENTIFICATION, 0, 2),
        PayloadRule::new(T::NAT_OA, 0, 2),
        PayloadRule::new(T::NAT_OA_DRAFT, 0, 2),
        PayloadRule::new(T::NOTIFICATION, 0, MAX_NOTIFY),
    ],
};

/// `HDR*, HASH(3)`.
pub(crate) const QM_HASH3: MessageRules = MessageRules {
    name: "quick mode HASH(3) message",
    encrypted: true,
    payloads: &[PayloadRule::new(T::HASH, 1, 1)],
};

/// `HDR*, HASH(4), N(CONNECTED)` (Windows' 4th message).
pub(crate) const QM_CONNECTED: MessageRules = MessageRules {
    name: "quick mode CONNECTED message",
    encrypted: true,
    payloads: &[
        PayloadRule::new(T::HASH, 1, 1),
        PayloadRule::new(T::NOTIFICATION, 1, MAX_NOTIFY),
    ],
};

/// `HDR*, HASH(1), N/D...`.
pub(crate) const INFO_PROTECTED: MessageRules = MessageRules {
    name: "protected informational",
    encrypted: true,
    payloads: &[
        PayloadRule::new(T::HASH, 1, 1),
        PayloadRule::new(T::NOTIFICATION, 0, MAX_NOTIFY),
        PayloadRule::new(T::DELETE, 0, MAX_NOTIFY),
    ],
};

/// `HDR, N` before keys exist.
pub(crate) const INFO_PLAIN: MessageRules = MessageRules {
    name: "unprotected informational",
    encrypted: false,
    payloads: &[
        PayloadRule::new(T::NOTIFICATION, 1, MAX_NOTIFY),
        PayloadRule::new(T::VENDOR_ID, 0, MAX_VID),
    ],
};

/// Checks `payloads` against `rules`.
pub(crate) fn check(rules: &MessageRules, payloads: &[Payload]) -> Result<(), Error> {
    for p in payloads {
        let t = p.payload_type();
        if !rules.payloads.iter().any(|r| r.payload == t) {
            return Err(PeerMisbehaved::PayloadNotAllowed {
                message: rules.name,
                payload: t,
            }
            .into());
        }
    }
    for r in rules.payloads {
        let count = payloads
            .iter()
            .filter(|p| p.payload_type() == r.payload)
            .count();
        if count < r.min || count > r.max {
            return Err(PeerMisbehaved::PayloadCount {
                message: rules.name,
                payload: r.payload,
                count,
            }
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use isakmp::{HashPayload, KePayload, NoncePayload};

    #[test]
    fn rejects_payloads_a_message_may_not_carry() {
        let p = [Payload::Hash(HashPayload { hash: vec![1] })];
        assert!(matches!(
            check(&MM_SA, &p),
            Err(Error::PeerMisbehaved(
                PeerMisbehaved::PayloadNotAllowed { .. }
            ))
        ));
    }

    #[test]
    fn rejects_missing_and_repeated_payloads() {
        let nonce = Payload::Nonce(NoncePayload { nonce: vec![0; 16] });
        let ke = Payload::KeyExchange(KePayload {
            key_exchange_data: vec![1],
        });
        assert!(check(&MM_KE, &[ke.clone(), nonce.clone()]).is_ok());
        assert!(check(&MM_KE, std::slice::from_ref(&nonce)).is_err());
        assert!(check(&MM_KE, &[ke, nonce.clone(), nonce]).is_err());
    }
}
