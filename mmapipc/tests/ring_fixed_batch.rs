//! `Ring::read_fixed_batch_detached`: runs of equal-size records held in place.

#![cfg(not(loom))]

use mmapipc::{Ring, RingError};

fn msg(i: u8) -> [u8; 24] {
    [i; 24]
}

#[test]
fn batch_is_contiguous_held_and_released_by_the_next_read() {
    let mut ring = Ring::heap(1024).unwrap();
    let mut rx = ring.new_handle();
    for i in 0..10 {
        assert!(ring.try_write(&msg(i)).unwrap());
    }
    let free_before = ring.available_write();
    let b = rx.read_fixed_batch_detached(100, 24).unwrap().unwrap();
    assert_eq!((b.count(), b.stride(), b.message_len()), (10, 32, 24));
    for i in 0..10 {
        // SAFETY: the batch is held until the next consumer call on `rx`.
        let rec = unsafe { std::slice::from_raw_parts(b.as_ptr().add(i * b.stride()), 24) };
        assert_eq!(rec, &msg(i as u8));
    }
    assert_eq!(ring.available_write(), free_before, "held records are not released to the producer");
    assert!(rx.read_fixed_batch_detached(100, 24).unwrap().is_none());
    assert_eq!(ring.available_write(), 1024, "the next consumer call released them");
}

#[test]
fn run_stops_at_the_wrap_and_at_another_size() {
    // 240 bytes: 7 records of 32 (224) leave 16, so the 8th goes after a padding record at 0.
    let mut ring = Ring::heap(240).unwrap();
    let mut rx = ring.new_handle();
    for i in 0..7 {
        assert!(ring.try_write(&msg(i)).unwrap());
    }
    assert_eq!(rx.read_fixed_batch_detached(100, 24).unwrap().unwrap().count(), 7);
    assert!(rx.try_read().unwrap().is_none(), "a consumer call releases the held batch");
    for i in 7..10 {
        assert!(ring.try_write(&msg(i)).unwrap());
    }
    let b = rx.read_fixed_batch_detached(100, 24).unwrap().unwrap();
    assert_eq!(b.count(), 3, "the padding record is skipped; the run starts at offset 0");
    // SAFETY: held until the next consumer call.
    assert_eq!(unsafe { *b.as_ptr() }, 7);
    assert!(rx.try_read().unwrap().is_none());
    // Records at 96..224 and then one at 224 that wraps: a run stops at the end of the buffer.
    for i in 10..15 {
        assert!(ring.try_write(&msg(i)).unwrap());
    }
    assert_eq!(rx.read_fixed_batch_detached(100, 24).unwrap().unwrap().count(), 4, "96..224");
    assert_eq!(rx.read_fixed_batch_detached(100, 24).unwrap().unwrap().count(), 1, "after the wrap");
    assert!(ring.try_write(&msg(20)).unwrap());
    assert!(ring.try_write(b"short").unwrap());
    assert_eq!(rx.read_fixed_batch_detached(100, 24).unwrap().unwrap().count(), 1, "stops before a shorter record");
    assert!(matches!(rx.read_fixed_batch_detached(100, 24), Err(RingError::WrongSize { len: 5, expected: 24 })));
    assert!(rx.read_fixed_batch_detached(100, 24).unwrap().is_none(), "the odd record was consumed");
}

#[test]
fn detached_loan_commits_in_place_and_refuses_stale_commits() {
    let mut ring = Ring::heap(1024).unwrap();
    let mut rx = ring.new_handle();
    let slot = ring.loan_detached_timeout(5, Some(std::time::Duration::ZERO)).unwrap().unwrap();
    // SAFETY: the slot is reserved for us until committed.
    unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), slot.as_ptr(), 5) };
    assert!(rx.try_read().unwrap().is_none(), "nothing visible before commit");
    ring.commit_detached(slot).unwrap();
    assert_eq!(&*rx.try_read().unwrap().unwrap(), b"hello");
    let stale = ring.loan_detached_timeout(3, None).unwrap().unwrap();
    assert!(ring.try_write(b"other").unwrap());
    assert!(matches!(ring.commit_detached(stale), Err(RingError::Corrupt { .. })));
    assert_eq!(&*rx.try_read().unwrap().unwrap(), b"other");
    let dropped = ring.loan_detached_timeout(3, None).unwrap().unwrap();
    drop(dropped);
    assert!(rx.try_read().unwrap().is_none(), "a dropped loan commits nothing");
}
