//! The same condition gives the same error from the ring and the queue: corrupt shared state,
//! a record of the wrong size, a message too large, a bad capacity, an empty path, a missing
//! directory. And the queue says what holds its space.

#![cfg(not(loom))]

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mmapipc::{OpenError, Queue, QueueError, Ring, RingError, SharedMemory};

fn path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-errors-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// File offset of the ring's `tail` and of the queue's (FORMAT.md).
const RING_TAIL: u64 = 128;
const QUEUE_TAIL: u64 = 128 + 2 * 128;

fn scribble(p: &std::path::Path, offset: u64, value: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

#[test]
fn corrupt_positions_are_corrupt_with_a_reason_in_both() {
    let rp = path("ring-corrupt");
    let mut ring = Ring::create(&rp, 4096).unwrap();
    scribble(&rp, RING_TAIL, 12345);
    let e = ring.try_read().map(|g| g.is_some()).unwrap_err();
    assert!(matches!(&e, RingError::Corrupt { reason } if reason.contains("12345")), "{e:?}");
    assert!(e.to_string().starts_with("ring is corrupt: "), "{e}");

    let qp = path("queue-corrupt");
    let q = Queue::create(&qp, 4096).unwrap();
    scribble(&qp, QUEUE_TAIL, 12345);
    let e = q.try_get().unwrap_err();
    assert!(matches!(&e, QueueError::Corrupt { reason } if reason.contains("12345")), "{e:?}");
    assert!(e.to_string().starts_with("queue is corrupt: "), "{e}");
    ring.unlink().unwrap();
    q.unlink().unwrap();
}

#[test]
fn a_record_of_the_wrong_size_is_wrong_size_in_both() {
    let mut ring = Ring::heap(4096).unwrap();
    let mut rx = ring.new_handle();
    ring.try_write(&[1; 10]).unwrap();
    ring.try_write(&[2; 32]).unwrap();
    let e = rx.read_fixed_batch_detached(100, 32).map(|b| b.is_some()).unwrap_err();
    assert_eq!(e, RingError::WrongSize { len: 10, expected: 32 });
    assert_eq!(e.to_string(), "message of 10 bytes in a ring of 32-byte records (taken and discarded)");
    // The odd message was taken: the next batch is the good record.
    assert_eq!(rx.read_fixed_batch_detached(100, 32).unwrap().map(|b| b.count()), Some(1));

    let q = Arc::new(Queue::heap(4096).unwrap());
    q.try_put(&[1; 10]).unwrap();
    q.try_put(&[2; 32]).unwrap();
    let e = q.get_fixed_views(100, 32, Some(Duration::ZERO)).map(|b| b.is_some()).unwrap_err();
    assert_eq!(e, QueueError::WrongSize { len: 10, expected: 32 });
    assert_eq!(e.to_string(), "message of 10 bytes in a queue of 32-byte records (taken and discarded)");
    assert_eq!(q.get_fixed_views(100, 32, Some(Duration::ZERO)).unwrap().map(|b| b.count()), Some(1));
}

#[test]
fn too_large_has_one_shape() {
    let mut ring = Ring::heap(64).unwrap();
    let e = ring.try_write(&[0; 57]).unwrap_err();
    assert_eq!(e, RingError::TooLarge { len: 57, max: 56 });
    assert_eq!(e.to_string(), "message of 57 bytes is larger than the ring's maximum message size of 56 bytes");
    let q = Queue::heap(64).unwrap();
    let e = q.try_put(&[0; 49]).unwrap_err();
    assert_eq!(e, QueueError::TooLarge { len: 49, max: 48 });
    assert_eq!(e.to_string(), "message of 49 bytes is larger than the queue's maximum message size of 48 bytes");
}

#[test]
fn capacity_rule_is_one_for_both() {
    let invalid = |r: Result<usize, OpenError>| match r {
        Err(OpenError::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    for bad in [0usize, 60, 63, mmapipc::layout::MAX_CAPACITY + 1] {
        let r = invalid(Ring::create(path("cap-ring"), bad).map(|r| r.capacity()));
        let q = invalid(Queue::create(path("cap-queue"), bad).map(|q| q.capacity()));
        let expect = |kind: &str| {
            format!(
                "{kind} capacity must be between 64 and 4294967288 bytes (rounded up to a multiple of 8), got {bad}"
            )
        };
        assert_eq!(r, expect("ring"));
        assert_eq!(q, expect("queue"));
    }
    for (asked, got) in [(64, 64), (65, 72), (72, 72)] {
        let (rp, qp) = (path("cap-ring-ok"), path("cap-queue-ok"));
        let ring = Ring::create(&rp, asked).unwrap();
        let q = Queue::create(&qp, asked).unwrap();
        assert_eq!((ring.capacity(), q.capacity()), (got, got), "capacity {asked}");
        ring.unlink().unwrap();
        q.unlink().unwrap();
    }
}

#[test]
fn empty_path_is_an_invalid_argument() {
    let empty = |r: Result<(), OpenError>| {
        assert!(matches!(&r, Err(OpenError::InvalidArgument(m)) if m.contains("path is empty")), "{r:?}");
    };
    empty(Ring::open("").map(drop));
    empty(Queue::open("").map(drop));
    empty(SharedMemory::open("").map(drop));
    empty(Ring::create("", 4096).map(drop));
    empty(Queue::create("", 4096).map(drop));
    empty(SharedMemory::create("", 8).map(drop));
}

#[test]
fn create_in_a_missing_directory_names_it() {
    let dir = path("no-such-dir");
    let file = dir.join("deeper").join("q");
    for r in [Queue::create(&file, 4096).map(drop), Ring::create(&file, 4096).map(drop)] {
        match r {
            Err(OpenError::DirectoryNotFound { path, dir: missing }) => {
                assert_eq!(path, file);
                assert_eq!(missing, file.parent().unwrap());
                let msg = OpenError::DirectoryNotFound { path, dir: missing }.to_string();
                assert!(
                    msg.contains(&format!("directory {} does not exist", file.parent().unwrap().display())),
                    "{msg}"
                );
            }
            other => panic!("expected DirectoryNotFound, got {other:?}"),
        }
    }
    // Opening a missing file stays NotFound.
    assert!(matches!(Queue::open(&file), Err(OpenError::NotFound { .. })));
}

#[test]
fn views_held_elsewhere_show_in_the_stats_and_free_space() {
    let p = path("views-held");
    let producer = Queue::create(&p, 1024).unwrap();
    let consumer = Arc::new(Queue::open(&p).unwrap());
    assert_eq!(producer.available_write(), 1024);
    assert_eq!(producer.stats().used_bytes, 0);
    let mut n = 0;
    while producer.try_put(&[7; 100]).unwrap() {
        n += 1;
    }
    assert!(n > 0);
    let used = producer.used_bytes();
    assert_eq!(producer.available_write(), 1024 - used);
    assert_eq!(producer.stats().used_bytes, used as u64);
    // A full queue with no views: no stall is counted.
    assert_eq!(producer.stats().view_stalls, 0);
    // The consumer takes everything as views and keeps them.
    let views = consumer.get_owned_views(usize::MAX, Some(Duration::ZERO)).unwrap();
    assert_eq!(views.len(), n);
    assert_eq!(producer.used_bytes(), used, "space behind a held view is not free");
    assert!(!producer.put_timeout(&[8; 100], Some(Duration::from_millis(30))).unwrap());
    assert!(!producer.try_put(&[8; 100]).unwrap());
    let s = producer.stats();
    assert_eq!(s.view_stalls, 1, "two puts stalled by one view: {s:?}");
    assert_eq!(s.used_bytes, used as u64);
    drop(views);
    assert_eq!(producer.available_write(), 1024);
    assert!(producer.try_put(&[8; 100]).unwrap());
    assert_eq!(producer.stats().view_stalls, 1);
    // Another view stalls producers: counted again.
    while producer.try_put(&[9; 100]).unwrap() {}
    let views = consumer.get_owned_views(usize::MAX, Some(Duration::ZERO)).unwrap();
    assert!(!producer.try_put(&[9; 100]).unwrap());
    assert_eq!(producer.stats().view_stalls, 2);
    drop(views);
    producer.unlink().unwrap();
}
