//! Bounds-checked field readers and writers, and the byte-order newtypes of the XFRM codec.
//!
//! Netlink headers and most XFRM fields are in the host's byte order; SPIs, ports and
//! addresses are in network byte order. The difference lives in the types: a [`Be16`] or
//! [`Be32`] field holds its value as a number and is written big-endian, every plain integer
//! field is written in native order. Nothing here panics on input: every read is checked
//! against the remaining length and fails with [`DecodeError::Truncated`].

use crate::DecodeError;

/// A 16-bit field that is big-endian (network order) on the wire; holds the numeric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Be16(pub u16);

/// A 32-bit field that is big-endian (network order) on the wire; holds the numeric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Be32(pub u32);

/// A cursor over input bytes; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the structure in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// Octets not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes every remaining octet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Takes the next `n` octets.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Skips `n` octets (padding).
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// Takes the next `N` octets as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        // `take` returned exactly N octets, so the lengths agree.
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// A `u8`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A native-order `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.array()?))
    }

    /// A native-order `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.array()?))
    }

    /// A native-order `i32`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_ne_bytes(self.array()?))
    }

    /// A native-order `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_ne_bytes(self.array()?))
    }

    /// A big-endian 16-bit field.
    pub fn be16(&mut self) -> Result<Be16, DecodeError> {
        Ok(Be16(u16::from_be_bytes(self.array()?)))
    }

    /// A big-endian 32-bit field.
    pub fn be32(&mut self) -> Result<Be32, DecodeError> {
        Ok(Be32(u32::from_be_bytes(self.array()?)))
    }
}

/// Appending fields to an output buffer.
pub trait Put {
    /// A `u8`.
    fn put_u8(&mut self, v: u8);
    /// A native-order `u16`.
    fn put_u16(&mut self, v: u16);
    /// A native-order `u32`.
    fn put_u32(&mut self, v: u32);
    /// A native-order `i32`.
    fn put_i32(&mut self, v: i32);
    /// A native-order `u64`.
    fn put_u64(&mut self, v: u64);
    /// A big-endian 16-bit field.
    fn put_be16(&mut self, v: Be16);
    /// A big-endian 32-bit field.
    fn put_be32(&mut self, v: Be32);
    /// `n` zero octets (padding).
    fn put_zeros(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_ne_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_ne_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_ne_bytes());
    }
    fn put_be16(&mut self, v: Be16) {
        self.extend_from_slice(&v.0.to_be_bytes());
    }
    fn put_be32(&mut self, v: Be32) {
        self.extend_from_slice(&v.0.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}

/// A fixed-size kernel structure.
pub trait Struct: Sized {
    /// Size on the wire in octets (LP64 layout, as on x86_64).
    const SIZE: usize;
    /// Name for errors (the uapi name).
    const NAME: &'static str;

    /// Reads exactly [`Self::SIZE`] octets.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Writes exactly [`Self::SIZE`] octets (padding as zeros).
    fn write(&self, out: &mut Vec<u8>);

    /// Decodes a buffer that must hold exactly this structure.
    fn decode_exact(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::SIZE {
            return Err(DecodeError::BadLength {
                what: Self::NAME,
                len: bytes.len(),
            });
        }
        Self::read(&mut Reader::new(bytes, Self::NAME))
    }

    /// The structure's bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        self.write(&mut out);
        out
    }
}

/// Rounds up to the netlink alignment (4 octets), saturating instead of overflowing.
pub fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_with_sizes() {
        let mut r = Reader::new(&[1, 2, 3], "thing");
        assert_eq!(r.u16().unwrap(), u16::from_ne_bytes([1, 2]));
        assert_eq!(
            r.u32(),
            Err(DecodeError::Truncated {
                what: "thing",
                need: 4,
                have: 1
            })
        );
    }

    #[test]
    fn big_endian_fields_are_written_in_network_order() {
        let mut out = Vec::new();
        out.put_be16(Be16(0x1234));
        out.put_be32(Be32(0xdead_beef));
        assert_eq!(out, [0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
        let mut r = Reader::new(&out, "x");
        assert_eq!(r.be16().unwrap(), Be16(0x1234));
        assert_eq!(r.be32().unwrap(), Be32(0xdead_beef));
    }

    #[test]
    fn align4_rounds_up_and_saturates() {
        assert_eq!(align4(0), 0);
        assert_eq!(align4(1), 4);
        assert_eq!(align4(4), 4);
        assert_eq!(align4(17), 20);
        assert_eq!(align4(usize::MAX), usize::MAX & !3);
    }
}
