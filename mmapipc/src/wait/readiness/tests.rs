use std::os::fd::RawFd;
use std::time::Duration;

use super::*;
use crate::{Queue, Ring};

/// Waits (up to `ms`) for `fd` to be readable.
fn readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd on our stack.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

fn sleepers(w: &Arc<dyn Watch>) -> u32 {
    w.waiter().sleepers.load(Ordering::Relaxed)
}

#[test]
fn arming_an_empty_ring_registers_and_a_write_fires_it() {
    let mut ring = Ring::heap(4096).unwrap();
    let mut producer = ring.new_handle();
    let n = Notifier::new();
    let watch = ring.readable_watch();
    assert!(!n.arm(watch.clone()).unwrap(), "empty: registered, not ready");
    assert!(n.armed());
    assert_eq!(sleepers(&watch), 1, "a registration counts as a sleeper");
    let fd = n.fd().unwrap();
    assert!(!readable(fd, 0));
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        assert!(producer.try_write(b"x").unwrap());
    });
    assert!(readable(fd, 10_000), "the write made the eventfd readable");
    t.join().unwrap();
    assert!(!n.armed(), "one-shot: the thread dropped the registration");
    assert_eq!(sleepers(&watch), 0);
    assert_eq!(&*ring.try_read().unwrap().unwrap(), b"x");
    // Arming again drains the descriptor first.
    assert!(!n.arm(watch.clone()).unwrap());
    assert!(!readable(fd, 0));
    n.disarm();
    assert_eq!(sleepers(&watch), 0, "disarm gives the count back");
}

#[test]
fn arming_a_ready_side_returns_true_and_leaves_nothing_registered() {
    let mut ring = Ring::heap(4096).unwrap();
    assert!(ring.try_write(b"ready").unwrap());
    let n = Notifier::new();
    let watch = ring.readable_watch();
    assert!(n.arm(watch.clone()).unwrap());
    assert!(!n.armed());
    assert_eq!(sleepers(&watch), 0);
    assert!(readable(n.fd().unwrap(), 0), "signalled as well");
}

#[test]
fn a_full_ring_becomes_writable_when_read() {
    let mut ring = Ring::heap(4096).unwrap();
    let mut consumer = ring.new_handle();
    while ring.try_write(&[7u8; 1000]).unwrap() {}
    let n = Notifier::new();
    let watch = ring.writable_watch(1000).unwrap();
    assert!(!n.arm(watch).unwrap());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(consumer.try_read().unwrap().unwrap());
    });
    assert!(readable(n.fd().unwrap(), 10_000));
    t.join().unwrap();
    assert!(ring.try_write(&[7u8; 1000]).unwrap());
    assert!(ring.writable_watch(1 << 20).is_err(), "a message that can never fit");
}

#[test]
fn a_queue_fires_on_put_and_on_room() {
    let q = Arc::new(Queue::heap(4096).unwrap());
    let n = Notifier::new();
    assert!(!n.arm(q.readable_watch()).unwrap());
    let q2 = q.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        assert!(q2.try_put(b"m").unwrap());
    });
    assert!(readable(n.fd().unwrap(), 10_000));
    t.join().unwrap();
    assert_eq!(q.try_get().unwrap().unwrap(), b"m");

    while q.try_put(&[1u8; 500]).unwrap() {}
    let w = Notifier::new();
    assert!(!w.arm(q.writable_watch(500).unwrap()).unwrap());
    assert!(!readable(w.fd().unwrap(), 0));
    assert!(q.try_get().unwrap().is_some());
    assert!(readable(w.fd().unwrap(), 10_000));
}

#[test]
fn many_watches_share_few_threads() {
    let rings: Vec<Ring> = (0..200).map(|_| Ring::heap(4096).unwrap()).collect();
    let notifiers: Vec<Notifier> = rings.iter().map(|_| Notifier::new()).collect();
    for (r, n) in rings.iter().zip(&notifiers) {
        assert!(!n.arm(r.readable_watch()).unwrap());
    }
    if uses_futex_waitv() {
        // Other tests of this binary may hold a few registrations of their own.
        assert!(waiter_threads() <= 4, "{} threads for 200 watches", waiter_threads());
    }
    let mut writers: Vec<Ring> = rings.iter().map(Ring::new_handle).collect();
    for (i, w) in writers.iter_mut().enumerate().rev() {
        assert!(w.try_write(&(i as u32).to_le_bytes()).unwrap());
    }
    for n in &notifiers {
        assert!(readable(n.fd().unwrap(), 10_000));
        assert!(!n.armed());
    }
}

#[test]
fn dropping_an_armed_notifier_unregisters() {
    let ring = Ring::heap(4096).unwrap();
    let watch = ring.readable_watch();
    let n = Notifier::new();
    assert!(!n.arm(watch.clone()).unwrap());
    drop(n);
    assert_eq!(sleepers(&watch), 0);
}
