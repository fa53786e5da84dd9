//! A received batch: the records of one `data` frame, kept in the frame they arrived in and
//! read in place ([`RawRecord`]). A node that only looks at a field and passes records on
//! (`filter`, `tally`) takes whole batches with [`Node::recv_batch`](super::Node::recv_batch)
//! and sends the records' bytes on unchanged.

use crate::record::raw::{self, RawRecord};
use crate::record::Record;

/// The bytes of a frame: as libzmq received them, or re-encoded from a frame that had to be
/// decoded (laid out unlike [`DATA_HEADER`](crate::wire::DATA_HEADER)).
enum Bytes {
    Zmq(zmq::Message),
    Owned(Vec<u8>),
}

/// Checked records of one frame, from the first not yet taken.
pub struct Batch {
    bytes: Bytes,
    /// Where the next record starts.
    pos: usize,
    /// Where each record ends (found when the frame was checked).
    ends: Vec<usize>,
    /// The next record's index in `ends`.
    next: usize,
}

impl Batch {
    /// Records from `pos` in a frame received from libzmq, ending at `ends`, each checked
    /// with [`raw::check_record`].
    pub(super) fn in_message(message: zmq::Message, pos: usize, ends: Vec<usize>) -> Batch {
        Batch { bytes: Bytes::Zmq(message), pos, ends, next: 0 }
    }

    /// Records, checked, back to back in `bytes`, ending at `ends`.
    pub(super) fn owned(bytes: Vec<u8>, ends: Vec<usize>) -> Batch {
        Batch { bytes: Bytes::Owned(bytes), pos: 0, ends, next: 0 }
    }

    fn buf(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Zmq(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// Records not yet taken.
    pub fn len(&self) -> usize {
        self.ends.len() - self.next
    }

    /// Whether every record was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records not yet taken, in order.
    pub fn records(&self) -> Records<'_> {
        Records { buf: self.buf(), pos: self.pos, ends: &self.ends[self.next..] }
    }

    /// Take the next record, decoded.
    pub(super) fn take_record(&mut self) -> Option<Result<Record, raw::RawError>> {
        let end = *self.ends.get(self.next)?;
        let rec = RawRecord::checked(&self.buf()[self.pos..end]).to_record();
        (self.pos, self.next) = (end, self.next + 1);
        Some(rec)
    }
}

/// The records of a [`Batch`].
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    ends: &'a [usize],
}

impl<'a> Iterator for Records<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        let (&end, rest) = self.ends.split_first()?;
        let rec = RawRecord::checked(&self.buf[self.pos..end]);
        (self.pos, self.ends) = (end, rest);
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.ends.len(), Some(self.ends.len()))
    }
}

impl ExactSizeIterator for Records<'_> {}
