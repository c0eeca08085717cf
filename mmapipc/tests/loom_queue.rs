//! loom model of the queue's claim / commit / view-release / reclaim protocol.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p mmapipc --test loom_queue --release`
//!
//! A miniature of `queue.rs` with the same orderings: a ring of 2 fixed slots, a producer that
//! writes a payload (a loom `UnsafeCell`, so loom reports any data race), sets the slot state
//! and publishes `tail` (Release); a consumer that stamps TAKEN and publishes `read` (Release),
//! reads the payload as a view, then marks DONE (Release) and advances `reclaim` by CAS; and a
//! third thread advancing `reclaim` concurrently (as any process may). The producer reuses a
//! slot only after an Acquire load of `reclaim` shows it free. loom checks that no payload is
//! overwritten while a view reads it and that every message arrives once, in order.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

const SLOTS: u64 = 2;
const COMMITTED: u32 = 1;
const TAKEN: u32 = 3;
const DONE: u32 = 4;

struct Ring {
    tail: AtomicU64,
    read: AtomicU64,
    reclaim: AtomicU64,
    state: [AtomicU32; SLOTS as usize],
    payload: [UnsafeCell<u64>; SLOTS as usize],
}

impl Ring {
    fn advance_reclaim(&self) {
        loop {
            let start = self.reclaim.load(Ordering::Acquire); // SYNC: reclaim-publish
            let read = self.read.load(Ordering::Acquire); // SYNC: read-publish
            let mut pos = start;
            while pos < read {
                let s = self.state[(pos % SLOTS) as usize].load(Ordering::Acquire); // SYNC: view-done
                if s != DONE && s != COMMITTED {
                    break;
                }
                pos += 1;
            }
            if pos == start {
                return;
            }
            // SYNC: reclaim-publish
            if self.reclaim.compare_exchange(start, pos, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
}

#[test]
fn claim_commit_view_release_reclaim() {
    let mut builder = loom::model::Builder::new();
    // Bounded preemptions keep the run short (about 12 s here); 2 covers the interleavings of
    // the commit / release / reclaim steps (each race here needs at most 2 switches). With the
    // view-done store weakened to Relaxed, this model reports the data race on the payload.
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let r = Arc::new(Ring {
            tail: AtomicU64::new(0),
            read: AtomicU64::new(0),
            reclaim: AtomicU64::new(0),
            state: [AtomicU32::new(0), AtomicU32::new(0)],
            payload: [UnsafeCell::new(0), UnsafeCell::new(0)],
        });
        const N: u64 = 3; // the third message reuses slot 0

        let p = r.clone();
        let producer = thread::spawn(move || {
            let mut next = 0;
            while next < N {
                let tail = p.tail.load(Ordering::Relaxed); // only this thread writes tail
                if tail - p.reclaim.load(Ordering::Acquire) >= SLOTS {
                    thread::yield_now(); // full
                    continue;
                }
                let i = (tail % SLOTS) as usize;
                p.payload[i].with_mut(|v| unsafe { *v = 100 + next });
                p.state[i].store(COMMITTED, Ordering::Relaxed);
                p.tail.store(tail + 1, Ordering::Release); // SYNC: tail-publish (the commit)
                next += 1;
            }
        });

        let c = r.clone();
        let consumer = thread::spawn(move || {
            let mut got = 0;
            while got < N {
                let read = c.read.load(Ordering::Relaxed); // only this thread writes read
                if c.tail.load(Ordering::Acquire) == read {
                    thread::yield_now();
                    continue;
                }
                let i = (read % SLOTS) as usize;
                c.state[i].store(TAKEN, Ordering::Relaxed);
                c.read.store(read + 1, Ordering::Release); // SYNC: read-publish (the commit)
                let v = c.payload[i].with(|v| unsafe { *v }); // the view
                assert_eq!(v, 100 + got, "message lost, duplicated or torn");
                c.state[i].store(DONE, Ordering::Release); // SYNC: view-done
                c.advance_reclaim();
                got += 1;
            }
        });

        let a = r.clone();
        let advancer = thread::spawn(move || a.advance_reclaim());

        producer.join().unwrap();
        consumer.join().unwrap();
        advancer.join().unwrap();
        assert_eq!(r.reclaim.load(Ordering::Relaxed), N);
    });
}
