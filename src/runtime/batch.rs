//! A received batch: the records of one `data` frame, kept in the frame they arrived in and
//! read in place ([`RawRecord`]). A node that only looks at a field and passes records on
//! (`filter`, `tally`) takes whole batches with [`Node::recv_batch`](super::Node::recv_batch)
//! and sends the records' bytes on unchanged.

use crate::record::lengths::{Lengths, LengthsIter};
use crate::record::raw;
use crate::record::{RawRecord, Record};

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
    /// The length of each record not yet taken (found when the frame was checked).
    lengths: Lengths,
}

impl Batch {
    /// Records from `pos` in a frame received from libzmq, back to back, each checked with
    /// [`raw::check_record`].
    pub(super) fn in_message(message: zmq::Message, pos: usize, lengths: Lengths) -> Batch {
        Batch { bytes: Bytes::Zmq(message), pos, lengths }
    }

    /// Records, checked, back to back in `bytes`.
    pub(super) fn owned(bytes: Vec<u8>, lengths: Lengths) -> Batch {
        Batch { bytes: Bytes::Owned(bytes), pos: 0, lengths }
    }

    fn buf(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Zmq(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// Records not yet taken.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether every record was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records not yet taken, in order.
    pub fn records(&self) -> Records<'_> {
        Records { buf: self.buf(), pos: self.pos, lengths: self.lengths.iter() }
    }

    /// Take the next record, decoded.
    pub(super) fn take_record(&mut self) -> Option<Result<Record, raw::RawError>> {
        let end = self.pos + self.lengths.pop_front()?;
        let rec = RawRecord::checked(&self.buf()[self.pos..end]).to_record();
        self.pos = end;
        Some(rec)
    }
}

/// The records of a [`Batch`].
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    lengths: LengthsIter<'a>,
}

impl<'a> Iterator for Records<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        let end = self.pos + self.lengths.next()?;
        let rec = RawRecord::checked(&self.buf[self.pos..end]);
        self.pos = end;
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.lengths.size_hint()
    }
}

impl ExactSizeIterator for Records<'_> {}
