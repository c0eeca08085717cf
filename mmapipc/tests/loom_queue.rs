//! loom models of the queue, run on the real `Queue` code over a heap queue (no files, no
//! processes): put and commit, take by copy or as a view, view release, reclaim, the wrap with
//! its padding record, the producer and consumer locks, and a tool's seqlock walk.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p mmapipc --test loom_queue --release`
//!
//! Under loom the data area is the loom twin of `mem::DataArea`: every record head and owner
//! word is a loom atomic, and every payload byte carries a `loom::cell::UnsafeCell`, so loom
//! reports any read of a byte not ordered after its write (a consumer reading unpublished
//! bytes), and any write not ordered after earlier reads or made while a view holds the byte (a
//! producer overwriting a record before it was reclaimed), in every interleaving within the
//! preemption bound. The models also check every payload and that each message arrives once, in
//! order. A 64-byte queue holds one 24-byte message (a 40-byte record), so the second message
//! goes after a padding record at the wrap, into space the first one must have left.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mmapipc::Queue;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    // Each race here (commit vs take, release vs reclaim vs reuse) needs at most 2 switches.
    b.preemption_bound = Some(2);
    b.check(f);
}

/// Message `i`: 24 bytes of `i`.
fn msg(i: u8) -> [u8; 24] {
    [i; 24]
}

/// Puts `msgs` with `try_put`, yielding while the queue is full.
fn produce(q: &Queue, msgs: &[[u8; 24]]) {
    for m in msgs {
        while !q.try_put(m).unwrap() {
            thread::yield_now();
        }
    }
}

/// Two messages through views: the second reuses the space of the first, which only its view's
/// release (and a reclaim by the consumer or by a third thread) frees.
#[test]
fn views_released_then_reused() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        let p = q.clone();
        let producer = thread::spawn(move || produce(&p, &[msg(1), msg(2)]));
        let a = q.clone();
        let advancer = thread::spawn(move || {
            a.advance_reclaim(false);
        });
        let mut next = 1;
        while next <= 2 {
            match q.try_get_view().unwrap() {
                Some(v) => {
                    assert_eq!(*v, msg(next), "a view saw a torn, stale or reused message");
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        advancer.join().unwrap();
        assert!(q.try_get().unwrap().is_none());
        let s = q.stats();
        assert_eq!((s.messages_in, s.messages_out, s.used_bytes), (2, 2, 0));
    });
}

/// Two messages taken by copy (the consumer's reclaim jumps over what it copied), then a third
/// put into the reclaimed space while the consumer may still be reclaiming.
#[test]
fn copies_reclaimed_then_reused() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        let p = q.clone();
        let producer = thread::spawn(move || produce(&p, &[msg(1), msg(2)]));
        let mut next = 1;
        while next <= 2 {
            match q.try_get().unwrap() {
                Some(m) => {
                    assert_eq!(m, msg(next), "a copy was torn, stale or reused");
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(q.used_bytes(), 0);
    });
}

/// Two producers: the producer lock and the `tail` hand-over between them, including the
/// process-local copy of `reclaim`. (The messages are taken after both are in: a consumer
/// polling beside two producers could starve a preempted lock holder in loom's scheduler.)
#[test]
fn two_producers() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        let producers: Vec<_> = [1u8, 2]
            .into_iter()
            .map(|i| {
                let p = q.clone();
                thread::spawn(move || {
                    while !p.try_put(&[i; 8]).unwrap() {
                        thread::yield_now();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut got = q.try_get_batch(8).unwrap();
        got.sort();
        assert_eq!(got, vec![vec![1u8; 8], vec![2; 8]], "each message exactly once");
    });
}

/// Two consumers, one taking a view and one a copy, of two messages put beforehand: the
/// consumer lock and the `read` hand-over between them; then a put that needs the space of both.
#[test]
fn two_consumers_view_and_copy() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        produce(&q, &[msg(1)]);
        assert!(q.try_put(&[2; 8]).unwrap()); // 40 + 24 bytes: the queue is full
        let c = q.clone();
        let viewer = thread::spawn(move || loop {
            if let Some(v) = c.try_get_view().unwrap() {
                break v.to_vec();
            }
            thread::yield_now();
        });
        let copied = loop {
            if let Some(m) = q.try_get().unwrap() {
                break m;
            }
            thread::yield_now();
        };
        let viewed = viewer.join().unwrap();
        let mut got = vec![copied, viewed];
        got.sort();
        assert_eq!(got, vec![vec![1u8; 24], vec![2; 8]], "each message exactly once");
        assert!(q.try_put(&[3; 48]).unwrap(), "both records were reclaimed");
    });
}

/// A tool peeks while a producer wraps and a consumer takes: whatever the walk returns is a
/// whole message that was committed at that position, never bytes of a reused record.
#[test]
fn peek_while_producing_and_consuming() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        let p = q.clone();
        let producer = thread::spawn(move || produce(&p, &[msg(1), msg(2)]));
        let t = q.clone();
        let tool = thread::spawn(move || {
            let peeked = t.peek_committed(None, 8).unwrap();
            for (pos, m) in &peeked.records {
                // Message 1 is at position 0; message 2 at 64 (after the padding at 40).
                let expect = match pos {
                    0 => msg(1),
                    64 => msg(2),
                    other => panic!("a record at {other}"),
                };
                assert_eq!(m[..], expect[..], "the walk returned bytes of a reused record");
            }
        });
        let mut next = 1;
        while next <= 2 {
            match q.try_get().unwrap() {
                Some(m) => {
                    assert_eq!(m, msg(next));
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        tool.join().unwrap();
    });
}

/// Loans `m` and commits it, yielding while the queue is full; `abandon_first` first loans a
/// slot, writes it and drops it (publishing nothing).
fn loan_put(q: &Queue, m: &[u8], abandon_first: bool) {
    if abandon_first {
        loop {
            if let Some(mut l) = q.loan(m.len(), Some(std::time::Duration::ZERO)).unwrap() {
                l.fill(|s| s.fill(0xEE));
                break;
            }
            thread::yield_now();
        }
    }
    loop {
        if let Some(mut l) = q.loan(m.len(), Some(std::time::Duration::ZERO)).unwrap() {
            l.fill(|s| s.copy_from_slice(m));
            l.commit().unwrap();
            return;
        }
        thread::yield_now();
    }
}

/// Two messages written through loans while a consumer copies them: the second needs the
/// space of the first (behind a padding record), so its payload writes must follow the
/// consumer's copy, and the consumer's reads must follow each commit.
#[test]
fn loans_committed_then_reused() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        let p = q.clone();
        let producer = thread::spawn(move || {
            loan_put(&p, &msg(1), false);
            loan_put(&p, &msg(2), false);
        });
        let mut next = 1;
        while next <= 2 {
            match q.try_get().unwrap() {
                Some(m) => {
                    assert_eq!(m, msg(next), "a copy saw a torn, stale or reused message");
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
    });
}

/// A loan abandoned (written, dropped) beside another producer: the lock goes with it and
/// nothing of it is published.
#[test]
fn abandoned_loan_beside_a_producer() {
    model(|| {
        let q = Arc::new(Queue::heap(64).unwrap());
        let a = q.clone();
        let loaner = thread::spawn(move || loan_put(&a, &[1; 8], true));
        let b = q.clone();
        let putter = thread::spawn(move || {
            while !b.try_put(&[2; 8]).unwrap() {
                thread::yield_now();
            }
        });
        loaner.join().unwrap();
        putter.join().unwrap();
        let mut got = q.try_get_batch(8).unwrap();
        got.sort();
        assert_eq!(got, vec![vec![1u8; 8], vec![2; 8]], "each message exactly once, no abandoned one");
    });
}
