//! [`TypedRing`]: a single-producer single-consumer [`Ring`] of `T` records, with records
//! serialized into their slots ([`TypedRing::send`]), large arrays filled in place
//! ([`TypedRing::loan_vec`]) and records read in place ([`TypedRing::try_recv`]).

use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use rkyv::rancor;
use rkyv::{Archived, Portable};

use super::channel::{Channel, Received, TypedOpenError, TypedRecvError, TypedSendError};
use super::codec::{self, Encode, IpcMessage};
use super::schema::{Schema, TypeDesc};
use crate::error::OpenError;
use crate::kind::Kind;
use crate::region::{CreateOptions, OpenOptions};
use crate::ring::RingError;
use crate::shorthands::channel_shorthands;
use crate::{RecvGuard, Ring, SlotMut};

/// A single-producer single-consumer ring of `T` records (see the [module docs](super)).
pub struct TypedRing<T> {
    chan: Channel<Ring>,
    _t: PhantomData<fn() -> T>,
}

/// A record received from a [`TypedRing`], in its slot; the slot is released when it drops.
pub type TypedGuard<'a, T> = Received<RecvGuard<'a>, T>;

impl<T> std::fmt::Debug for TypedRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chan.debug(f, "TypedRing", "ring")
    }
}

/// A slot of `len` bytes: now or not at all for `Some(ZERO)` (the ring's fast path), else within
/// `timeout`.
fn loan(ring: &mut Ring, len: usize, timeout: Option<Duration>) -> Result<Option<SlotMut<'_>>, RingError> {
    if timeout == Some(Duration::ZERO) {
        ring.try_loan(len)
    } else {
        ring.loan_timeout(len, timeout)
    }
}

channel_shorthands! {
    impl[T: IpcMessage + Encode] TypedRing<T>
    where [Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>]
    (create: CreateOptions, open: OpenOptions) -> TypedOpenError;
    /// Creates a ring of `capacity` bytes carrying `T`, with `T`'s schema in its header.
    fn create;
    /// Opens a ring and checks that it carries `T` (or a newer version of it that only appended
    /// fields). A mismatch is [`TypedOpenError::Mismatch`], whose message lists every difference.
    fn open;
}

impl<T: IpcMessage + Encode> TypedRing<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, capacity: usize, opts: &CreateOptions) -> Result<Self, TypedOpenError> {
        let chan = Channel::create::<T>(|schema| Ring::create_with_schema(path, capacity, opts, schema))?;
        Ok(TypedRing { chan, _t: PhantomData })
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Self, TypedOpenError> {
        let chan = Channel::open::<T>(path, Kind::Ring, opts, |path| Ring::open_with(path, opts))?;
        Ok(TypedRing { chan, _t: PhantomData })
    }

    /// The schema stored in the channel.
    pub fn schema(&self) -> &Schema {
        self.chan.schema()
    }

    /// The underlying byte ring.
    pub fn ring(&mut self) -> &mut Ring {
        &mut self.chan.bytes
    }

    /// Sends `value` if there is room now; `Ok(false)` if the ring is full.
    pub fn try_send(&mut self, value: &T) -> Result<bool, TypedSendError> {
        self.send_timeout(value, Some(Duration::ZERO))
    }

    /// Sends `value`, waiting for room.
    pub fn send(&mut self, value: &T) -> Result<(), TypedSendError> {
        self.send_timeout(value, None).map(|_| ())
    }

    /// Sends `value`, waiting at most `timeout` (`None`: forever); `Ok(false)` on timeout.
    pub fn send_timeout(&mut self, value: &T, timeout: Option<Duration>) -> Result<bool, TypedSendError> {
        let len = self.chan.send_len(value)?;
        let Some(mut slot) = loan(&mut self.chan.bytes, len, timeout)? else { return Ok(false) };
        // Serialized straight into the claimed slot; on error the slot drops uncommitted.
        let written = codec::serialize_into(value, &mut slot)?;
        debug_assert_eq!(written, len);
        slot.commit();
        Ok(true)
    }

    /// Reserves a slot for `header` plus an array of `count` elements of type `E` that becomes the
    /// `Vec` field `field` of the message (which must be empty in `header`). Fill the array in
    /// place through [`VecLoan::array`], then [`VecLoan::commit`]; dropping the loan sends nothing.
    /// Waits at most `timeout` for room (`Some(ZERO)`: do not wait); `Ok(None)` on timeout.
    pub fn loan_vec<E: Plain>(
        &mut self,
        header: &T,
        field: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<VecLoan<'_, E>>, TypedSendError> {
        self.chan.check_writer()?;
        let schema = self.chan.schema();
        let f = schema
            .fields
            .iter()
            .find(|f| f.name == field)
            .ok_or_else(|| TypedSendError::BadLoan(format!("{} has no field {field}", schema.name)))?;
        match &f.ty {
            TypeDesc::Vec { elem } if matches!(**elem, TypeDesc::Scalar { scalar } if scalar.size() as usize == std::mem::size_of::<E>()) =>
                {}
            other => {
                return Err(TypedSendError::BadLoan(format!(
                    "field {field} is {other}, not a Vec of {}-byte elements",
                    std::mem::size_of::<E>()
                )))
            }
        }
        let field_offset = f.offset as usize;
        let array_bytes = count
            .checked_mul(std::mem::size_of::<E>())
            .and_then(|b| b.checked_add(7))
            .map(|b| b & !7)
            .filter(|&b| b <= i32::MAX as usize)
            .ok_or_else(|| TypedSendError::BadLoan(format!("{count} elements do not fit a message")))?;
        let header_len = codec::archived_len(header)?;
        let total = array_bytes + header_len;
        let root_size = self.chan.root_size;
        let Some(mut slot) = loan(&mut self.chan.bytes, total, timeout)? else { return Ok(None) };
        codec::serialize_into(header, &mut slot[array_bytes..])?;
        // Point the Vec field (relative pointer + length, FORMAT.md "Typed payload") at the
        // array, which starts at offset 0 of the slot.
        let field_at = total - root_size + field_offset;
        let rel = -(field_at as i64) as i32;
        slot[field_at..field_at + 4].copy_from_slice(&rel.to_le_bytes());
        slot[field_at + 4..field_at + 8].copy_from_slice(&(count as u32).to_le_bytes());
        Ok(Some(VecLoan { slot, count, _e: PhantomData }))
    }

    /// Receives the next record if there is one, validated in place.
    pub fn try_recv(&mut self) -> Result<Option<TypedGuard<'_, T>>, TypedRecvError> {
        self.recv_timeout(Some(Duration::ZERO))
    }

    /// Receives the next record, waiting for one.
    pub fn recv(&mut self) -> Result<TypedGuard<'_, T>, TypedRecvError> {
        match self.recv_timeout(None)? {
            Some(g) => Ok(g),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Receives the next record, waiting at most `timeout` (`None`: forever).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<TypedGuard<'_, T>>, TypedRecvError> {
        let root_size = self.chan.root_size;
        let ring = &mut self.chan.bytes;
        let guard = if timeout == Some(Duration::ZERO) { ring.try_read()? } else { ring.read_timeout(timeout)? };
        let Some(guard) = guard else { return Ok(None) };
        Ok(Some(Received::checked(guard, root_size)?))
    }

    /// Receives the next record without validating it.
    ///
    /// # Safety
    /// The producer must be trusted to write valid archives of the channel's schema (e.g. a
    /// `TypedRing<T>` in a process you control): an invalid message is undefined behaviour here.
    pub unsafe fn try_recv_unchecked(&mut self) -> Result<Option<TypedGuard<'_, T>>, TypedRecvError> {
        let root_size = self.chan.root_size;
        let Some(guard) = self.chan.bytes.try_read()? else { return Ok(None) };
        // SAFETY: the caller vouches for every message of this channel (this fn's contract).
        Ok(Some(unsafe { Received::unchecked(guard, root_size) }?))
    }

    /// Removes the file.
    pub fn unlink(&self) -> Result<(), OpenError> {
        self.chan.bytes.unlink()
    }
}

/// Element types a [`TypedRing::loan_vec`] array can hold: plain numbers whose archived form
/// is their native form on this (little-endian) machine.
pub trait Plain: Copy + 'static + private::Sealed {}
mod private {
    pub trait Sealed {}
}
macro_rules! plain {
    ($($t:ty),*) => {$( impl private::Sealed for $t {} impl Plain for $t {} )*};
}
#[cfg(target_endian = "little")]
plain!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// A claimed slot with an array inside it to fill before [`commit`](Self::commit).
pub struct VecLoan<'a, E> {
    slot: SlotMut<'a>,
    count: usize,
    _e: PhantomData<E>,
}

impl<E: Plain> VecLoan<'_, E> {
    /// The array, in the slot.
    pub fn array(&mut self) -> &mut [E] {
        let ptr = self.slot.as_mut_ptr();
        debug_assert_eq!(ptr as usize % std::mem::align_of::<E>(), 0);
        // SAFETY: the slot starts 8-byte aligned with `count * size_of::<E>()` bytes reserved
        // for the array at offset 0 (loan_vec); E is a plain number type valid for any bit
        // pattern; the slot is exclusively ours until commit, and the borrow of `self` keeps it so.
        unsafe { std::slice::from_raw_parts_mut(ptr as *mut E, self.count) }
    }

    /// Publishes the message.
    pub fn commit(self) {
        self.slot.commit();
    }
}
