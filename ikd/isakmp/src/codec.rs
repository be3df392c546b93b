//! Crate-private helpers: a bounds-checked big-endian [`Reader`] over a byte slice and the
//! length-field writers used by the encoders.
//!
//! Every read goes through `slice::get`, so a short buffer becomes
//! [`DecodeError::Truncated`] instead of a panic. Nothing here allocates.

use crate::error::{DecodeError, EncodeError};

/// A cursor over received bytes. Reads are big-endian (network order).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next `n` octets; `what` names the field for the error.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match (self.data.get(..n), self.data.get(n..)) {
            (Some(head), Some(tail)) => {
                self.data = tail;
                Ok(head)
            }
            _ => Err(DecodeError::Truncated { what }),
        }
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Converts a length to a `u16` length field.
pub(crate) fn len_u16(len: usize, what: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        len,
        max: u16::MAX.into(),
    })
}

/// Converts a length or count to a `u8` field.
pub(crate) fn len_u8(len: usize, what: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        len,
        max: u8::MAX.into(),
    })
}

/// Writes `value` as a big-endian `u16` at `at`, which the caller reserved earlier.
pub(crate) fn patch_u16(out: &mut [u8], at: usize, value: u16) {
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}

/// Encodes a structure that starts with a generic payload header (next payload, reserved,
/// 16-bit length covering the header): writes the header, lets `body` append, then fills in
/// the length.
pub(crate) fn with_generic_header(
    out: &mut Vec<u8>,
    next_payload: u8,
    what: &'static str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[next_payload, 0, 0, 0]);
    body(out)?;
    let len = len_u16(out.len() - start, what)?;
    patch_u16(out, start + 2, len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a"), Ok(0x0102));
        assert_eq!(r.u16("b"), Err(DecodeError::Truncated { what: "b" }));
        // A failed read consumes nothing.
        assert_eq!(r.u8("c"), Ok(3));
        assert!(r.is_empty());
        assert_eq!(
            r.take(usize::MAX, "d"),
            Err(DecodeError::Truncated { what: "d" })
        );
    }

    #[test]
    fn generic_header_length_covers_header_and_body() {
        let mut out = vec![0xaa];
        with_generic_header(&mut out, 5, "x", |o| {
            o.extend_from_slice(&[9; 6]);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0xaa, 5, 0, 0, 10, 9, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn generic_header_rejects_bodies_over_64k() {
        let mut out = Vec::new();
        let r = with_generic_header(&mut out, 0, "big", |o| {
            o.resize(70_000, 0);
            Ok(())
        });
        assert!(matches!(r, Err(EncodeError::TooLong { what: "big", .. })));
    }
}
