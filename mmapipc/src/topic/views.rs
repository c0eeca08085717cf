//! What a subscriber hands out: [`Received`] (a message in place or copied), and records held
//! past the call for bindings ([`DetachedView`], [`DetachedRun`], the latter from
//! [`Subscriber::try_recv_fixed_batch`]).

use std::sync::Arc;
use std::time::Duration;

use crate::mem::Bytes;
use crate::span::Span;
use crate::wait::Deadline;

use super::error::{corrupt, TopicError};
use super::handle::{Overflow, TopicMemory};
use super::layout::RECORD_HEADER;
use super::subscriber::{Got, Next, Subscriber};

/// A received message (derefs to its payload): in place in the topic (an exclusive subscriber
/// of a block-mode topic; its space is released when the guard drops) or copied.
pub struct Received<'a> {
    pub(super) sub: &'a mut Subscriber,
    pub(super) bytes: Bytes,
    /// In place: the record's size; copied: 0 (the payload is the subscriber's buffer).
    pub(super) rec: u64,
    pub(super) len: usize,
}

impl std::ops::Deref for Received<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        if self.rec != 0 {
            self.bytes.as_slice()
        } else {
            &self.sub.buf[..self.len]
        }
    }
}

impl Drop for Received<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.rec != 0 {
            // The bytes go back to the publisher below: let go of them first.
            self.bytes.end();
            self.sub.advance(self.rec, self.len);
            self.sub.publish();
        }
    }
}

impl std::fmt::Debug for Received<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received").field("len", &self.len).field("in_place", &(self.rec != 0)).finish()
    }
}

impl<'a> Received<'a> {
    /// True if the payload is read in place (not a copy).
    pub fn in_place(&self) -> bool {
        self.rec != 0
    }

    /// Keeps an in-place record held past the guard, until the next operation of this
    /// subscriber (for bindings exporting views without a borrow). `None` for a copy.
    pub fn detach(self) -> Option<DetachedView> {
        if self.rec == 0 {
            return None;
        }
        let mut me = std::mem::ManuallyDrop::new(self);
        me.bytes.end();
        let (rec, len) = (me.rec, me.len);
        let sub: &mut Subscriber = me.sub;
        let ptr = sub.mem.data.ptr(sub.off + RECORD_HEADER as u64);
        sub.advance(rec, len);
        sub.held = rec;
        Some(DetachedView { mem: sub.mem.clone(), span: Span::new(ptr, len) })
    }
}

/// A record held in place after its guard ([`Received::detach`]): valid until the next
/// operation of the subscriber that read it.
#[derive(Debug)]
pub struct DetachedView {
    /// Keeps the mapping alive.
    pub mem: Arc<TopicMemory>,
    span: Span,
}

// SAFETY: a pointer into memory `mem` keeps alive; reads through it are governed by the
// subscriber protocol (the record stays held), not by which thread holds the value.
unsafe impl Send for DetachedView {}

impl std::ops::Deref for DetachedView {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.span
    }
}

/// A run of equally sized records held in place ([`Subscriber::try_recv_fixed_batch`]), valid
/// until the next operation of the subscriber that took it.
#[derive(Debug)]
pub struct DetachedRun {
    /// Keeps the mapping alive.
    pub mem: Arc<TopicMemory>,
    ptr: *mut u8,
    count: usize,
    stride: usize,
    len: usize,
}

// SAFETY: a pointer into memory `mem` keeps alive; reads through it are governed by the
// subscriber protocol (the records stay held), not by which thread holds the value.
unsafe impl Send for DetachedRun {}

impl DetachedRun {
    /// Start of the first record's payload; record `i`'s is `i * stride()` further.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    /// Number of records.
    pub fn count(&self) -> usize {
        self.count
    }
    /// Distance between consecutive payloads.
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Bytes from the first payload to the end of the last one.
    pub fn span(&self) -> usize {
        if self.count == 0 {
            0
        } else {
            (self.count - 1) * self.stride + self.len
        }
    }
}

impl Subscriber {
    /// Takes up to `max` consecutive messages of exactly `len` bytes that lie contiguously in the
    /// data area (the run stops at the wrap or at a message of another length) and keeps them
    /// held in place until the next operation of this subscriber: an array of records with a
    /// fixed stride, which bindings expose without copying (a structured NumPy array). An
    /// exclusive subscriber of a block-mode topic only ([`TopicError::Unsupported`] otherwise).
    /// `Ok(None)`: nothing to read. A first message of another length is received and reported
    /// as [`TopicError::WrongSize`].
    pub fn try_recv_fixed_batch(&mut self, max: usize, len: usize) -> Result<Option<DetachedRun>, TopicError> {
        self.check()?;
        if self.group.is_some() || self.mem.overflow == Overflow::Overwrite {
            return Err(TopicError::Unsupported(
                "runs in place are for exclusive subscribers of a block-mode topic (receive copies)",
            ));
        }
        let mut first: Option<(u64, u64)> = None; // (payload offset, cursor at the first record)
        let (mut count, mut stride) = (0usize, 0u64);
        while count < max {
            match self.next()? {
                Next::Empty => break,
                Next::Message { off, len: l, rec, stamp } => {
                    if stamp != self.seq as u32 {
                        return Err(corrupt(format!(
                            "message at {} has stamp {stamp}, expected {}",
                            self.cursor, self.seq
                        )));
                    }
                    if l != len {
                        if count == 0 {
                            self.advance(rec, l);
                            self.publish();
                            return Err(TopicError::WrongSize { len: l, expected: len });
                        }
                        break;
                    }
                    match first {
                        None => {
                            first = Some((off, self.cursor));
                            stride = rec;
                        }
                        Some((start, _)) if off != start + count as u64 * stride => break,
                        Some(_) => {}
                    }
                    self.advance(rec, l);
                    count += 1;
                }
            }
        }
        let run = first.map(|(off, start)| {
            // Hold everything from the first record on: `publish` releases only what precedes.
            self.held = self.cursor - start;
            DetachedRun { mem: self.mem.clone(), ptr: self.mem.data.ptr(off), count, stride: stride as usize, len }
        });
        self.publish();
        Ok(run)
    }
}

/// Receiving one message: the guard ([`Received`]) over what `take` found.
impl Subscriber {
    /// Receives one message if one is ready. `Ok(None)`: nothing new.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Option<Received<'_>>, TopicError> {
        Ok(self.take(false)?.map(|g| self.guard(g)))
    }

    /// Receives one message in place (an exclusive subscriber of a block-mode topic only:
    /// elsewhere the publisher or another member may overwrite it while held, so views are
    /// refused with [`TopicError::Unsupported`]).
    #[inline]
    pub fn try_recv_view(&mut self) -> Result<Option<Received<'_>>, TopicError> {
        Ok(self.take(true)?.map(|g| self.guard(g)))
    }

    #[inline]
    pub(super) fn guard(&mut self, g: Got) -> Received<'_> {
        let bytes = if g.rec != 0 {
            // SAFETY: `take_in_place` validated off + len within the area and the record below
            // the Acquire-loaded tail; our cursor (published at or below it) keeps the publisher
            // from overwriting it until the guard releases it; `self.mem` keeps it mapped.
            unsafe { self.mem.data.bytes(g.off, g.len) }
        } else {
            Bytes::default()
        };
        Received { sub: self, bytes, rec: g.rec, len: g.len }
    }

    /// Receives one message, waiting at most `timeout` (`None`: forever). `Ok(None)`: timed out.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Received<'_>>, TopicError> {
        self.recv_until(Deadline::after(timeout), None, false)
    }

    /// [`recv_timeout`](Self::recv_timeout), also giving up (`Ok(None)`) once `stop` is set.
    pub fn recv_or_stop(
        &mut self,
        timeout: Option<Duration>,
        stop: &std::sync::atomic::AtomicBool,
        view: bool,
    ) -> Result<Option<Received<'_>>, TopicError> {
        self.recv_until(Deadline::after(timeout), Some(stop), view)
    }

    fn recv_until(
        &mut self,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
        view: bool,
    ) -> Result<Option<Received<'_>>, TopicError> {
        loop {
            if let Some(g) = self.take(view)? {
                return Ok(Some(self.guard(g)));
            }
            if !self.wait_readable_until(deadline, stop)? {
                return Ok(None);
            }
        }
    }
}
