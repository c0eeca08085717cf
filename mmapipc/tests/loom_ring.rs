//! loom model of the ring's index protocol on a heap ring (no files, no processes).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p mmapipc --test loom_ring --release`
//!
//! Under loom the data area is made of `loom::cell::UnsafeCell`s, so loom reports any read of a
//! byte not ordered after its write (a consumer reading unpublished bytes) and any write not
//! ordered after the previous read of it (a producer overwriting unreleased bytes), in every
//! interleaving within the preemption bound; the test also checks every payload's contents.
#![cfg(loom)]

use loom::thread;
use mmapipc::Ring;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

/// Three 20-byte messages through an 80-byte ring: records at 0 and 32, then a padding record at
/// 64 and the third record at 0 again, overwriting bytes the consumer must have released. The
/// records are frames (more than a third of the capacity): where the consumer has released the
/// first one before the second is written, the second goes to 0 behind a padding record at 32.
#[test]
fn stream_with_wrap_and_padding() {
    model(|| {
        let mut producer = Ring::heap(80).unwrap();
        let mut consumer = producer.new_handle();
        let t = thread::spawn(move || {
            for i in 1..=3u8 {
                while !producer.try_write(&[i; 20]).unwrap() {
                    thread::yield_now();
                }
            }
        });
        let mut next = 1u8;
        while next <= 3 {
            match consumer.try_read().unwrap() {
                Some(g) => {
                    assert_eq!(&*g, &[next; 20][..], "consumer saw a torn or stale message");
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        t.join().unwrap();
        assert!(consumer.try_read().unwrap().is_none());
    });
}

/// Batches: one tail publication for several records, one head publication for several reads.
#[test]
fn batches() {
    model(|| {
        let mut producer = Ring::heap(64).unwrap();
        let mut consumer = producer.new_handle();
        let t = thread::spawn(move || {
            let msgs: [&[u8]; 3] = [&[1; 8], &[2; 8], &[3; 8]];
            let mut sent = 0;
            while sent < msgs.len() {
                sent += producer.write_batch(&msgs[sent..]).unwrap();
                if sent < msgs.len() {
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = consumer.read_batch(8, |m| got.push(m.to_vec())).unwrap();
            if n == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(got, vec![vec![1u8; 8], vec![2; 8], vec![3; 8]]);
        t.join().unwrap();
    });
}
