//! Topic benchmarks, in one process (the costs of the code paths, not of cache-line transfers
//! between cores; the two-process numbers are the Python harness's `topic` rows).
//!
//! * `topic_vs_ring/{topic,ring}_64B`: publish + receive of a 64 B message with one subscriber,
//!   against the ring's write + read, same thread, same run.
//! * `publisher_cost/{1,4,16}_subscribers`: the publisher's time per 64 B message with that many
//!   subscribers attached, each of which keeps up (they drain after every burst of 256 messages,
//!   outside the timed part): the publisher's cost must not grow with the number of subscribers.
//!
//! Run: `cargo bench -p mmapipc --bench topic` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mmapipc::topic::{Start, Topic, TopicOptions};
use mmapipc::Ring;

const CAPACITY: usize = 1 << 20;
const BURST: u64 = 256;

fn topic_vs_ring(c: &mut Criterion) {
    let msg = [7u8; 64];
    let mut g = c.benchmark_group("topic_vs_ring");
    g.throughput(Throughput::Elements(1));
    let t = Topic::heap(CAPACITY, &TopicOptions::default()).unwrap();
    let mut sub = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    g.bench_function("topic_64B", |b| {
        b.iter(|| {
            assert!(p.try_publish(black_box(&msg)).unwrap());
            let m = sub.try_recv().unwrap().unwrap();
            black_box(m[0]);
        })
    });
    let mut ring = Ring::heap(CAPACITY).unwrap();
    let mut rx = ring.new_handle();
    g.bench_function("ring_64B", |b| {
        b.iter(|| {
            assert!(ring.try_write(black_box(&msg)).unwrap());
            let m = rx.try_read().unwrap().unwrap();
            black_box(m[0]);
        })
    });
    g.finish();
}

fn publisher_cost(c: &mut Criterion) {
    let msg = [7u8; 64];
    let mut g = c.benchmark_group("publisher_cost");
    g.throughput(Throughput::Elements(1));
    for n in [1usize, 4, 16] {
        let t = Topic::heap(CAPACITY, &TopicOptions { max_subscribers: 16, ..TopicOptions::default() }).unwrap();
        let mut subs: Vec<_> = (0..n).map(|_| t.subscribe(Start::Latest).unwrap()).collect();
        let mut p = t.publisher().unwrap();
        g.bench_function(format!("{n}_subscribers"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let k = left.min(BURST);
                    let t0 = Instant::now();
                    for _ in 0..k {
                        assert!(p.try_publish(black_box(&msg)).unwrap());
                    }
                    spent += t0.elapsed();
                    for s in &mut subs {
                        while s.try_recv().unwrap().is_some() {}
                    }
                    left -= k;
                }
                spent
            })
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    topic_vs_ring(&mut c);
    publisher_cost(&mut c);
    c.final_summary();
}
