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
    pos: usize,
    left: usize,
}

impl Batch {
    /// `count` records starting at `pos` in a frame received from libzmq, each checked with
    /// [`raw::check_record`].
    pub(super) fn in_message(message: zmq::Message, pos: usize, count: usize) -> Batch {
        Batch { bytes: Bytes::Zmq(message), pos, left: count }
    }

    /// `count` records, checked, back to back in `bytes`.
    pub(super) fn owned(bytes: Vec<u8>, count: usize) -> Batch {
        Batch { bytes: Bytes::Owned(bytes), pos: 0, left: count }
    }

    fn buf(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Zmq(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// Records not yet taken.
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether every record was taken.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// The records not yet taken, in order.
    pub fn records(&self) -> Records<'_> {
        Records { buf: self.buf(), pos: self.pos, left: self.left }
    }

    /// Take the next record, decoded.
    pub(super) fn take_record(&mut self) -> Option<Result<Record, raw::RawError>> {
        let mut it = self.records();
        let rec = it.next()?.to_record();
        let (pos, left) = (it.pos, it.left);
        (self.pos, self.left) = (pos, left);
        Some(rec)
    }
}

/// The records of a [`Batch`].
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        if self.left == 0 {
            return None;
        }
        // Checked when the frame arrived, so the record ends where `skip` says.
        let end = raw::record_end(self.buf, self.pos).unwrap_or(self.buf.len());
        let rec = RawRecord::checked(&self.buf[self.pos..end]);
        self.pos = end;
        self.left -= 1;
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Records<'_> {}
