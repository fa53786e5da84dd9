//! The lengths of records lying back to back in a frame, as a received batch keeps them: one
//! LEB128 varint each, so that they never take more bytes than the records (a record takes a
//! byte at least, a varint a byte per 7 bits of length). A `Vec<usize>` of where each ends
//! took 8 bytes per one-byte record: a frame of 60 million `{}` took 480 MB more.

/// The lengths of records lying back to back, taken from the front.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lengths {
    varints: Vec<u8>,
    /// Varint bytes already taken.
    start: usize,
    /// Lengths not taken yet.
    count: usize,
}

impl Lengths {
    /// Room for `records` records, most of them under 128 bytes.
    pub fn with_capacity(records: usize) -> Lengths {
        Lengths { varints: Vec::with_capacity(records), start: 0, count: 0 }
    }

    /// Add the next record's length.
    #[inline]
    pub fn push(&mut self, mut len: usize) {
        while len >= 0x80 {
            self.varints.push(0x80 | (len & 0x7f) as u8);
            len >>= 7;
        }
        self.varints.push(len as u8);
        self.count += 1;
    }

    /// Take the first length.
    #[inline]
    pub fn pop_front(&mut self) -> Option<usize> {
        let mut it = self.iter();
        let len = it.next()?;
        self.start = self.varints.len() - it.varints.len();
        self.count -= 1;
        Some(len)
    }

    /// How many lengths are left.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none is left.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The lengths left, in order.
    pub fn iter(&self) -> LengthsIter<'_> {
        LengthsIter { varints: &self.varints[self.start..], left: self.count }
    }
}

/// The lengths of a [`Lengths`], in order.
#[derive(Debug, Clone)]
pub struct LengthsIter<'a> {
    varints: &'a [u8],
    left: usize,
}

impl Iterator for LengthsIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = self.varints[i];
            len |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        self.varints = &self.varints[i..];
        self.left -= 1;
        Some(len)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for LengthsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_take_a_byte_per_byte_of_record_at_most() {
        let all = [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 30, usize::MAX >> 1];
        let mut lengths = Lengths::default();
        all.iter().for_each(|&n| lengths.push(n));
        assert_eq!(lengths.iter().collect::<Vec<_>>(), all);
        assert_eq!(lengths.varints.len(), 1 + 1 + 1 + 2 + 2 + 2 + 3 + 5 + 9);
        assert_eq!(lengths.pop_front(), Some(0));
        assert_eq!(lengths.pop_front(), Some(1));
        assert_eq!((lengths.len(), lengths.iter().next()), (7, Some(127)));
    }
}
