//! The phase-1 authentication plug-in point: [`Authenticator`] (one per peer, long-lived)
//! starts an [`AuthSession`] (one per main mode), which the main-mode state machine asks at
//! fixed points. [`PskAuthenticator`] is the preshared-key implementation.
//!
//! # Why this shape
//!
//! Main mode (RFC 2409 §5) differs between authentication methods in exactly four places,
//! and the session has one method for each:
//!
//! 1. **SKEYID.** PSK: `prf(pre-shared-key, Ni_b | Nr_b)`; signatures and GSS-API Kerberos:
//!    `prf(Ni_b | Nr_b, g^xy)` ([`AuthSession::skeyid_input`]).
//! 2. **Extra payloads in MM3/MM4.** Signatures add CR (certificate request); GSS-API puts
//!    the first context token (payload 129, Kerberos AP-REQ / AP-REP) there
//!    ([`AuthSession::key_exchange_payloads`] to send, [`AuthSession::process_key_exchange`]
//!    for what the peer sent; PSK adds nothing).
//! 3. **What proves the identity in MM5/MM6.** PSK sends `HASH_I`/`HASH_R` as a HASH
//!    payload; RSA sends `[CERT,] SIG` with the hash signed (PKCS#1 v1.5 over the raw hash);
//!    GSS-API sends further tokens while the context needs them and then the hash wrapped
//!    or MIC'd by the GSS context ([`AuthSession::prove`]). The engine computes the hash
//!    (it holds SKEYID) and hands it over; the session returns the payloads that follow
//!    IDii/IDir. Long-term private keys stay behind the session, so a later split into a
//!    separate key process changes nothing in the engine.
//! 4. **Verifying the peer** ([`AuthSession::verify`]): given the peer's payloads after its
//!    ID and the hash the engine expects, the session compares (PSK, in constant time),
//!    checks a signature against a certificate chain, or unwraps a GSS token.
//!
//! GSS-API may need more than one encrypted round trip after MM4 (racoon: MM5/MM6-shaped
//! messages repeat while `GSS_S_CONTINUE_NEEDED`). For that, [`AuthSession::prove`] and
//! [`AuthSession::verify`] return [`AuthStep::Continue`] with the payloads to send in
//! another encrypted message of the same exchange. The hashes also cover the GSS tokens
//! (racoon `oakley_ph1hash_common`): [`AuthSession::hash_suffix`] supplies the octets
//! appended after `IDii_b`/`IDir_b`. The PSK session never continues; the engine currently
//! refuses a `Continue` (there is no multi-round-trip authenticator yet) with a typed
//! failure rather than looping.

use std::fmt;

use ikecrypto::keymat::SkeyidInput;
use ikecrypto::Secret;
use isakmp::{AuthenticationMethod, HashPayload, NotifyType, Payload};

use crate::types::Role;

/// A phase-1 authentication method for one peer.
pub trait Authenticator: Send + Sync {
    /// The Oakley authentication method this authenticator implements (proposals with
    /// another method are neither offered nor accepted for this peer).
    fn method(&self) -> AuthenticationMethod;

    /// Starts the authentication of one main mode in `role`.
    fn start(&self, role: Role) -> Box<dyn AuthSession>;
}

/// What one main mode asks its authentication method.
pub trait AuthSession: Send {
    /// The SKEYID formula and its secret input.
    fn skeyid_input(&self) -> SkeyidInput<'_>;

    /// Payloads to add to our MM3 (initiator) or MM4 (responder).
    fn key_exchange_payloads(&mut self) -> Result<Vec<Payload>, AuthError> {
        Ok(Vec::new())
    }

    /// The peer's MM3/MM4 payloads besides KE and Nonce (CR, GSS tokens).
    fn process_key_exchange(&mut self, _payloads: &[Payload]) -> Result<(), AuthError> {
        Ok(())
    }

    /// Octets appended to `IDii_b`/`IDir_b` in `HASH_I`/`HASH_R` (GSS-API: the tokens of the
    /// side whose hash it is). Empty for PSK and signatures.
    fn hash_suffix(&self, _whose: Role) -> Vec<u8> {
        Vec::new()
    }

    /// The payloads proving our identity, following our ID payload in MM5/MM6, given our
    /// `HASH_I`/`HASH_R`.
    fn prove(&mut self, own_hash: &Secret) -> Result<AuthStep, AuthError>;

    /// Checks the peer's payloads (everything after its ID payload) against the hash the
    /// engine computed for the peer.
    fn verify(
        &mut self,
        payloads: &[Payload],
        expected_hash: &Secret,
    ) -> Result<AuthStep, AuthError>;
}

/// The outcome of a proof or verification step.
#[derive(Debug)]
pub enum AuthStep {
    /// Authentication is complete; for [`AuthSession::prove`], these payloads go into the
    /// message.
    Done(Vec<Payload>),
    /// Another round trip is needed; these payloads go into the next encrypted message.
    Continue(Vec<Payload>),
}

/// Why authentication failed, with the Notify to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: {reason}")]
pub struct AuthError {
    /// What went wrong (for logs; never contains secrets).
    pub reason: &'static str,
    /// The Notify type that tells the peer (INVALID-HASH-INFORMATION,
    /// AUTHENTICATION-FAILED, INVALID-SIGNATURE...).
    pub notify: NotifyType,
}

/// Preshared-key authentication (Oakley method 1). The key is zeroized on drop.
pub struct PskAuthenticator {
    psk: Secret,
}

impl PskAuthenticator {
    /// Wraps a preshared key (copied; zeroize the original yourself).
    pub fn new(psk: &[u8]) -> Self {
        Self {
            psk: Secret::from_slice(psk),
        }
    }
}

impl fmt::Debug for PskAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PskAuthenticator(..)")
    }
}

impl Authenticator for PskAuthenticator {
    fn method(&self) -> AuthenticationMethod {
        AuthenticationMethod::PRE_SHARED_KEY
    }

    fn start(&self, _role: Role) -> Box<dyn AuthSession> {
        Box::new(PskSession {
            psk: self.psk.clone(),
        })
    }
}

struct PskSession {
    psk: Secret,
}

impl AuthSession for PskSession {
    fn skeyid_input(&self) -> SkeyidInput<'_> {
        SkeyidInput::PreSharedKey(self.psk.as_bytes())
    }

    // HDR*, IDii, HASH_I -->   /   <-- HDR*, IDir, HASH_R
    fn prove(&mut self, own_hash: &Secret) -> Result<AuthStep, AuthError> {
        Ok(AuthStep::Done(vec![Payload::Hash(HashPayload {
            hash: own_hash.as_bytes().to_vec(),
        })]))
    }

    fn verify(
        &mut self,
        payloads: &[Payload],
        expected_hash: &Secret,
    ) -> Result<AuthStep, AuthError> {
        let mut hashes = payloads.iter().filter_map(|p| match p {
            Payload::Hash(h) => Some(h),
            _ => None,
        });
        let (Some(hash), None) = (hashes.next(), hashes.next()) else {
            return Err(AuthError {
                reason: "exactly one HASH payload required with a preshared key",
                notify: NotifyType::PAYLOAD_MALFORMED,
            });
        };
        if expected_hash.ct_eq(&hash.hash) {
            Ok(AuthStep::Done(Vec::new()))
        } else {
            Err(AuthError {
                reason: "HASH does not verify (wrong preshared key?)",
                notify: NotifyType::INVALID_HASH_INFORMATION,
            })
        }
    }
}
