//! Typed queues: every example type across processes, evolution, refusal, corruption.

#![cfg(not(loom))]

mod common;

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use example_types::{Tensor, Tick, TickV2, VideoFrame};
use mmapipc::{TypedOpenError, TypedQueue, TypedRecvError, TypedSendError};

const N: u64 = 2_000;

fn path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-typedq-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn tick(i: u64) -> Tick {
    Tick { timestamp_ns: i, symbol: *b"SYM\0\0\0\0\0", price: i as f64 * 0.5, size: i as u32, side: (i % 2) as u8 }
}

fn frame(i: u64) -> VideoFrame {
    VideoFrame {
        seq: i,
        timestamp_ns: i,
        width: 8,
        height: 4,
        stride: 24,
        pixel_format: 1,
        pixels: (0..96).map(|p| (p + i) as u8).collect(),
    }
}

fn tensor(i: u64) -> Tensor {
    Tensor {
        dtype: 1,
        ndim: 1,
        shape: [3, 0, 0, 0],
        strides: [4, 0, 0, 0],
        data: (0..3).flat_map(|k| ((k + i) as f32).to_le_bytes()).collect(),
    }
}

/// The child roles: `tick PATH`, `frame PATH`, `tensor PATH` produce N messages of that kind
/// into the queue at PATH.
fn roles(kind: &str, args: &[String]) {
    let path = &args[0];
    match kind {
        "tick" => {
            let q = TypedQueue::<Tick>::open(path).unwrap();
            (0..N).for_each(|i| q.send(&tick(i)).unwrap());
        }
        "frame" => {
            let q = TypedQueue::<VideoFrame>::open(path).unwrap();
            (0..N).for_each(|i| q.send(&frame(i)).unwrap());
        }
        "tensor" => {
            let q = TypedQueue::<Tensor>::open(path).unwrap();
            (0..N).for_each(|i| q.send(&tensor(i)).unwrap());
        }
        other => panic!("unknown kind {other}"),
    }
}

common::child_roles!(roles);

fn spawn_child(kind: &str, path: &std::path::Path) -> std::process::Child {
    common::child(kind, &[path]).stdout(Stdio::null()).spawn().unwrap()
}

#[test]
fn every_example_type_round_trips_across_processes() {
    let t = Some(Duration::from_secs(30));
    let p = path("tick");
    let q = TypedQueue::<Tick>::create(&p, 1 << 12).unwrap();
    let mut child = spawn_child("tick", &p);
    for i in 0..N {
        let m = q.recv_timeout(t).unwrap().expect("tick within 30 s");
        assert_eq!(
            (m.timestamp_ns.to_native(), m.price.to_native(), m.size.to_native()),
            (i, i as f64 * 0.5, i as u32)
        );
    }
    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&p).unwrap();

    let p = path("frame");
    let q = TypedQueue::<VideoFrame>::create(&p, 1 << 12).unwrap();
    let mut child = spawn_child("frame", &p);
    for i in 0..N {
        let m = q.recv_timeout(t).unwrap().expect("frame within 30 s");
        assert_eq!(m.seq.to_native(), i);
        assert_eq!(m.pixels.as_slice(), &frame(i).pixels[..]);
    }
    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&p).unwrap();

    let p = path("tensor");
    let q = TypedQueue::<Tensor>::create(&p, 1 << 12).unwrap();
    let mut child = spawn_child("tensor", &p);
    for i in 0..N {
        let m = q.recv_timeout(t).unwrap().expect("tensor within 30 s");
        assert_eq!(m.data.as_slice(), &tensor(i).data[..]);
    }
    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn evolution_refusal_and_corruption() {
    let p = path("evolve");
    let q2 = TypedQueue::<TickV2>::create(&p, 1 << 12).unwrap();
    q2.send(&TickV2 { timestamp_ns: 9, symbol: [0; 8], price: 1.0, size: 2, side: 0, venue: 3 }).unwrap();
    let q1 = TypedQueue::<Tick>::open(&p).unwrap();
    assert_eq!(q1.try_recv().unwrap().unwrap().timestamp_ns, 9);
    assert!(matches!(q1.try_send(&tick(1)), Err(TypedSendError::OlderVersion(_))));
    std::fs::remove_file(&p).unwrap();

    let p = path("refuse");
    let _q = TypedQueue::<Tick>::create(&p, 1 << 12).unwrap();
    assert!(matches!(TypedQueue::<VideoFrame>::open(&p), Err(TypedOpenError::Mismatch(_))));
    std::fs::remove_file(&p).unwrap();

    let p = path("corrupt");
    let q = TypedQueue::<VideoFrame>::create(&p, 1 << 14).unwrap();
    q.queue().put(b"definitely not an archived frame, but long enough to have a root").unwrap();
    q.send(&frame(5)).unwrap();
    assert!(matches!(q.try_recv(), Err(TypedRecvError::Invalid(_))));
    assert_eq!(q.try_recv().unwrap().unwrap().seq, 5, "the queue goes on after a bad message");
    std::fs::remove_file(&p).unwrap();
}
