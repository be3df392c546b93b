//! Message plumbing shared by the exchanges: building headers, encrypting a payload chain
//! with padding (RFC 2409 Appendix B), decrypting, walking a decrypted chain with its raw
//! bytes, and the "HASH first, then the bytes it covers" layout of quick-mode and
//! informational messages.
//!
//! IV bookkeeping is the caller's: [`seal`] and [`open`] return the last ciphertext block,
//! which is the next IV of the chain. Nothing here keeps state.

use ikecrypto::{last_block, CipherAlgorithm, CryptoProvider, Secret};
use isakmp::payload::RawPayloads;
use isakmp::{
    Body, DecodeError, ExchangeType, Flags, HashPayload, Message, Payload, PayloadType, RawPayload,
};

use crate::error::{Error, PeerMisbehaved};

/// Header fields of a message to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hdr {
    pub(crate) icky: [u8; 8],
    pub(crate) rcky: [u8; 8],
    pub(crate) exchange: ExchangeType,
    pub(crate) message_id: u32,
    pub(crate) flags: Flags,
}

/// The ISAKMP SA cipher and its key.
pub(crate) struct CipherKey<'a> {
    pub(crate) crypto: &'a dyn CryptoProvider,
    pub(crate) cipher: CipherAlgorithm,
    pub(crate) key: &'a Secret,
}

/// An unencrypted message.
pub(crate) fn plain(hdr: Hdr, payloads: Vec<Payload>) -> Result<Vec<u8>, Error> {
    Ok(Message {
        initiator_cookie: hdr.icky,
        responder_cookie: hdr.rcky,
        minor_version: 0,
        exchange_type: hdr.exchange,
        flags: hdr.flags,
        message_id: hdr.message_id,
        body: Body::Payloads(payloads),
    }
    .to_bytes()?)
}

/// Encodes a payload chain; returns the first payload type and the bytes.
pub(crate) fn encode_chain(payloads: &[Payload]) -> Result<(PayloadType, Vec<u8>), Error> {
    let mut out = Vec::new();
    let first = isakmp::encode_payloads(payloads, &mut out)?;
    Ok((first, out))
}

/// `HASH | rest`: a HASH payload whose Next Payload is `rest_first`, followed by `rest`.
pub(crate) fn hash_then(
    hash: &Secret,
    rest_first: PayloadType,
    rest: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(4 + hash.len() + rest.len());
    Payload::Hash(HashPayload {
        hash: hash.as_bytes().to_vec(),
    })
    .encode(rest_first, &mut out)?;
    out.extend_from_slice(rest);
    Ok(out)
}

/// Pads `plaintext` to the block size, encrypts it with `iv`, and builds the message.
/// Returns the datagram and its last ciphertext block (the next IV).
pub(crate) fn seal(
    ck: &CipherKey<'_>,
    iv: &[u8],
    hdr: Hdr,
    first: PayloadType,
    mut plaintext: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let block = ck.cipher.block_len();
    let padded = plaintext.len().next_multiple_of(block).max(block);
    let pad = padded - plaintext.len();
    plaintext.resize(padded, 0);
    // racoon style: the last padding octet holds the padding length; receivers parse by
    // payload lengths and ignore it.
    if let (Some(last), Ok(pad)) = (plaintext.last_mut(), u8::try_from(pad)) {
        if pad > 0 {
            *last = pad;
        }
    }
    ck.crypto
        .encrypt(ck.cipher, ck.key.as_bytes(), iv, &mut plaintext)?;
    let next_iv = last_block(ck.cipher, &plaintext)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let bytes = Message {
        initiator_cookie: hdr.icky,
        responder_cookie: hdr.rcky,
        minor_version: 0,
        exchange_type: hdr.exchange,
        flags: hdr.flags,
        message_id: hdr.message_id,
        body: Body::Encrypted {
            next_payload: first,
            ciphertext: plaintext,
        },
    }
    .to_bytes()?;
    Ok((bytes, next_iv))
}

/// Decrypts a message body with `iv`. Returns the plaintext (padding included) and the last
/// ciphertext block (the next IV).
pub(crate) fn open(
    ck: &CipherKey<'_>,
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let next_iv = last_block(ck.cipher, ciphertext)
        .ok_or(DecodeError::Truncated {
            what: "encrypted body",
        })?
        .to_vec();
    let mut data = ciphertext.to_vec();
    ck.crypto
        .decrypt(ck.cipher, ck.key.as_bytes(), iv, &mut data)?;
    Ok((data, next_iv))
}

/// A decoded payload chain with each payload's raw bytes.
pub(crate) struct Chain<'a> {
    pub(crate) raws: Vec<RawPayload<'a>>,
    pub(crate) payloads: Vec<Payload>,
}

impl<'a> Chain<'a> {
    /// Walks and decodes the chain starting with `first`. With `padded`, octets after the
    /// last payload are encryption padding and ignored; without, they are an error.
    pub(crate) fn parse(first: PayloadType, data: &'a [u8], padded: bool) -> Result<Self, Error> {
        let mut walker = RawPayloads::new(first, data);
        let mut raws = Vec::new();
        let mut payloads = Vec::new();
        for raw in walker.by_ref() {
            let raw = raw?;
            payloads.push(raw.decode()?);
            raws.push(raw);
        }
        let trailing = walker.trailing().len();
        if !padded && trailing != 0 {
            return Err(DecodeError::TrailingData { len: trailing }.into());
        }
        Ok(Self { raws, payloads })
    }

    /// The raw body of the first payload of type `t`.
    pub(crate) fn body_of(&self, t: PayloadType) -> Option<&'a [u8]> {
        self.raws
            .iter()
            .find(|r| r.payload_type == t)
            .map(|r| r.body)
    }

    /// For a message that must start with HASH: the HASH body and every byte after the
    /// HASH payload up to the end of the chain (padding excluded), as on the wire.
    pub(crate) fn hash_and_rest(
        &self,
        data: &'a [u8],
        message: &'static str,
    ) -> Result<(&'a [u8], &'a [u8]), Error> {
        let Some(first) = self.raws.first() else {
            return Err(PeerMisbehaved::HashNotFirst(message).into());
        };
        if first.payload_type != PayloadType::HASH {
            return Err(PeerMisbehaved::HashNotFirst(message).into());
        }
        let start = first.bytes.len();
        let end: usize = self.raws.iter().map(|r| r.bytes.len()).sum();
        let rest = data.get(start..end).ok_or(DecodeError::Truncated {
            what: "payloads after HASH",
        })?;
        Ok((first.body, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ikecrypto::RustCryptoProvider;
    use isakmp::NoncePayload;

    #[test]
    fn seal_and_open_round_trip_with_padding() {
        let crypto = RustCryptoProvider::new();
        let key = Secret::from_slice(&[7; 24]);
        let ck = CipherKey {
            crypto: &crypto,
            cipher: CipherAlgorithm::TripleDesCbc,
            key: &key,
        };
        let (first, body) =
            encode_chain(&[Payload::Nonce(NoncePayload { nonce: vec![9; 13] })]).unwrap();
        let hdr = Hdr {
            icky: [1; 8],
            rcky: [2; 8],
            exchange: ExchangeType::INFORMATIONAL,
            message_id: 5,
            flags: Flags::default(),
        };
        let (msg, next_iv) = seal(&ck, &[0; 8], hdr, first, body.clone()).unwrap();
        assert_eq!((msg.len() - 28) % 8, 0);
        assert_eq!(&msg[msg.len() - 8..], next_iv.as_slice());
        let (plain, iv2) = open(&ck, &[0; 8], &msg[28..]).unwrap();
        assert_eq!(iv2, next_iv);
        let chain = Chain::parse(first, &plain, true).unwrap();
        assert_eq!(chain.raws[0].bytes, body.as_slice());
        assert!(Chain::parse(first, &plain, false).is_err());
    }
}
