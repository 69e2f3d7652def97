//! Byte reading and writing shared by every format: big-endian integers, length-prefixed fields.
//! Pure functions over slices; a reader never panics and never reads past its input.

use crate::{Error, Result};

/// A cursor over input bytes that yields `Malformed` errors naming the format.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn malformed(&self, reason: &'static str) -> Error {
        Error::Malformed {
            what: self.what,
            reason,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(self.malformed("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(crate) fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Checks a magic prefix and a version byte; returns `UnsupportedVersion` for any other version.
    pub(crate) fn header(&mut self, magic: &[u8; 4], version: u8) -> Result<()> {
        if self.take(4)? != magic {
            return Err(self.malformed("wrong magic bytes"));
        }
        let v = self.u8()?;
        if v != version {
            return Err(Error::UnsupportedVersion {
                what: self.what,
                version: v,
            });
        }
        Ok(())
    }

    /// A field prefixed by a u8 length.
    pub(crate) fn bytes_u8(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    /// A field prefixed by a u16 length.
    pub(crate) fn bytes_u16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// A field prefixed by a u32 length, at most `limit` bytes.
    pub(crate) fn bytes_u32(&mut self, limit: usize) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > limit {
            return Err(self.malformed("length field over the limit"));
        }
        self.take(n)
    }
    /// A UTF-8 string prefixed by a u8 length.
    pub(crate) fn str_u8(&mut self) -> Result<&'a str> {
        let b = self.bytes_u8()?;
        core::str::from_utf8(b).map_err(|_| self.malformed("text is not UTF-8"))
    }
    /// A UTF-8 string prefixed by a u16 length.
    pub(crate) fn str_u16(&mut self) -> Result<&'a str> {
        let b = self.bytes_u16()?;
        core::str::from_utf8(b).map_err(|_| self.malformed("text is not UTF-8"))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fails unless all input was consumed (trailing bytes are never ignored).
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("trailing bytes"))
        }
    }
}

/// Appends big-endian fields to a buffer. Lengths are checked by the callers' limits first, so the
/// conversions here cannot truncate; they still fail closed rather than wrap.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_header(magic: &[u8; 4], version: u8) -> Self {
        let mut w = Self::default();
        w.bytes(magic);
        w.u8(version);
        w
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn i16(&mut self, v: i16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn bytes_u8(&mut self, b: &[u8]) -> Result<()> {
        let n = u8::try_from(b.len()).map_err(|_| Error::Invalid("field longer than 255 bytes"))?;
        self.u8(n);
        self.bytes(b);
        Ok(())
    }
    pub(crate) fn bytes_u16(&mut self, b: &[u8]) -> Result<()> {
        let n =
            u16::try_from(b.len()).map_err(|_| Error::Invalid("field longer than 65535 bytes"))?;
        self.u16(n);
        self.bytes(b);
        Ok(())
    }
    pub(crate) fn bytes_u32(&mut self, b: &[u8]) -> Result<()> {
        let n = u32::try_from(b.len()).map_err(|_| Error::Invalid("field longer than 4 GiB"))?;
        self.u32(n);
        self.bytes(b);
        Ok(())
    }
}
