//! Typed rings: every example type across processes, evolution, refusal with a diff, frames
//! filled in place, and corrupt slots that fail validation instead of causing UB.

#![cfg(not(loom))]

mod common;

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;
use mmapipc::{TypedOpenError, TypedRecvError, TypedRing, TypedSendError};
use proptest::prelude::*;

use example_types::{Tensor, Tick, TickV2, VideoFrame, VideoFrameV2};

const N: u64 = 2_000;

fn path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-typed-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn tick(i: u64) -> Tick {
    Tick { timestamp_ns: i, symbol: *b"SYM\0\0\0\0\0", price: i as f64 * 0.5, size: i as u32, side: (i % 2) as u8 }
}

fn frame(i: u64) -> VideoFrame {
    let (w, h) = (16u32, 9u32);
    VideoFrame {
        seq: i,
        timestamp_ns: i * 10,
        width: w,
        height: h,
        stride: w * 3,
        pixel_format: 1,
        pixels: (0..(w * h * 3)).map(|p| (p as u64 + i) as u8).collect(),
    }
}

fn tensor(i: u64) -> Tensor {
    let data: Vec<u8> = (0..6).flat_map(|k| ((k + i) as f32).to_le_bytes()).collect();
    Tensor { dtype: 1, ndim: 2, shape: [2, 3, 0, 0], strides: [12, 4, 0, 0], data }
}

/// The child roles: `tick PATH`, `frame PATH`, `tensor PATH` produce N messages of that kind
/// into the ring at PATH.
fn roles(kind: &str, args: &[String]) {
    let path = &args[0];
    match kind {
        "tick" => {
            let mut tx = TypedRing::<Tick>::open(path).unwrap();
            (0..N).for_each(|i| tx.send(&tick(i)).unwrap());
        }
        "frame" => {
            let mut tx = TypedRing::<VideoFrame>::open(path).unwrap();
            (0..N).for_each(|i| tx.send(&frame(i)).unwrap());
        }
        "tensor" => {
            let mut tx = TypedRing::<Tensor>::open(path).unwrap();
            (0..N).for_each(|i| tx.send(&tensor(i)).unwrap());
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
    {
        let p = path("tick");
        let mut rx = TypedRing::<Tick>::create(&p, 1 << 12).unwrap();
        let mut child = spawn_child("tick", &p);
        for i in 0..N {
            let m = rx.recv_timeout(t).unwrap().expect("tick within 30 s");
            assert_eq!(
                (m.timestamp_ns.to_native(), m.price.to_native(), m.size.to_native(), m.side),
                (i, i as f64 * 0.5, i as u32, (i % 2) as u8)
            );
        }
        assert!(child.wait().unwrap().success());
        std::fs::remove_file(&p).unwrap();
    }
    {
        let p = path("frame");
        let mut rx = TypedRing::<VideoFrame>::create(&p, 1 << 14).unwrap();
        let mut child = spawn_child("frame", &p);
        for i in 0..N {
            let m = rx.recv_timeout(t).unwrap().expect("frame within 30 s");
            let want = frame(i);
            assert_eq!(
                (m.seq.to_native(), m.width.to_native(), m.height.to_native(), m.stride.to_native()),
                (i, want.width, want.height, want.stride)
            );
            assert_eq!(m.pixels.as_slice(), &want.pixels[..]);
        }
        assert!(child.wait().unwrap().success());
        std::fs::remove_file(&p).unwrap();
    }
    {
        let p = path("tensor");
        let mut rx = TypedRing::<Tensor>::create(&p, 1 << 12).unwrap();
        let mut child = spawn_child("tensor", &p);
        for i in 0..N {
            let m = rx.recv_timeout(t).unwrap().expect("tensor within 30 s");
            assert_eq!(m.data.as_slice(), &tensor(i).data[..]);
            assert_eq!(m.shape[1], 3);
        }
        assert!(child.wait().unwrap().success());
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn v1_reader_reads_v2_channel_but_may_not_write_it() {
    let p = path("evolve");
    let mut tx = TypedRing::<VideoFrameV2>::create(&p, 1 << 16).unwrap();
    let f = frame(3);
    tx.send(&VideoFrameV2 {
        seq: 3,
        timestamp_ns: 30,
        width: f.width,
        height: f.height,
        stride: f.stride,
        pixel_format: 1,
        pixels: f.pixels.clone(),
        exposure_us: 999,
    })
    .unwrap();
    let mut rx = TypedRing::<VideoFrame>::open(&p).unwrap();
    {
        let m = rx.try_recv().unwrap().unwrap();
        assert_eq!(m.seq, 3);
        assert_eq!(m.pixels.as_slice(), &f.pixels[..]);
    }
    assert!(matches!(rx.try_send(&f), Err(TypedSendError::OlderVersion(_))));
    // A v2 reader on a v1 channel is refused.
    let p1 = path("evolve-v1");
    let _v1 = TypedRing::<Tick>::create(&p1, 4096).unwrap();
    let err = TypedRing::<TickV2>::open(&p1).unwrap_err();
    assert!(err.to_string().contains("reader needs v2"), "{err}");
    std::fs::remove_file(&p).unwrap();
    std::fs::remove_file(&p1).unwrap();
}

/// Same name and version as market.Tick v1, but price is f32: an incompatible change.
#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "market.Tick", version = 1)]
struct BadTick {
    timestamp_ns: u64,
    symbol: [u8; 8],
    price: f32,
    size: u32,
    side: u8,
}

#[test]
fn incompatible_reader_is_refused_with_a_field_diff() {
    let p = path("mismatch");
    let _tx = TypedRing::<Tick>::create(&p, 4096).unwrap();
    let err = TypedRing::<BadTick>::open(&p).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TypedOpenError::Mismatch(_)));
    assert!(msg.contains("channel has market.Tick v1"), "{msg}");
    assert!(msg.contains("field price: f64 at 16 size 8 (channel) vs f32 at 16 size 4 (reader)"), "{msg}");
    let untyped = path("untyped");
    let _r = mmapipc::Ring::create(&untyped, 4096).unwrap();
    assert!(matches!(TypedRing::<Tick>::open(&untyped), Err(TypedOpenError::Untyped { .. })));
    std::fs::remove_file(&p).unwrap();
    std::fs::remove_file(&untyped).unwrap();
}

#[test]
fn frame_pixels_filled_in_place() {
    let p = path("loan");
    let mut tx = TypedRing::<VideoFrame>::create(&p, 1 << 22).unwrap();
    let (w, h) = (640usize, 480usize);
    let header = VideoFrame {
        seq: 1,
        timestamp_ns: 5,
        width: w as u32,
        height: h as u32,
        stride: (w * 3) as u32,
        pixel_format: 1,
        pixels: Vec::new(),
    };
    let mut loan = tx.loan_vec::<u8>(&header, "pixels", w * h * 3, None).unwrap().unwrap();
    for (i, px) in loan.array().iter_mut().enumerate() {
        *px = (i % 251) as u8;
    }
    loan.commit();
    assert!(matches!(tx.loan_vec::<u16>(&header, "pixels", 4, None), Err(TypedSendError::BadLoan(_))));
    assert!(matches!(tx.loan_vec::<u8>(&header, "seq", 4, None), Err(TypedSendError::BadLoan(_))));
    let mut rx = TypedRing::<VideoFrame>::open(&p).unwrap();
    let m = rx.try_recv().unwrap().unwrap();
    assert_eq!((m.seq.to_native(), m.width.to_native(), m.height.to_native()), (1, w as u32, h as u32));
    assert_eq!(m.pixels.len(), w * h * 3);
    assert!(m.pixels.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    drop(m);
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn corrupt_message_fails_validation_and_is_consumed() {
    let p = path("corrupt");
    let mut tx = TypedRing::<VideoFrame>::create(&p, 1 << 16).unwrap();
    tx.send(&frame(1)).unwrap();
    let mut rx = TypedRing::<VideoFrame>::open(&p).unwrap();
    // Corrupt the committed message in place: its pixels pointer now points outside it.
    let raw = {
        let m = rx.try_recv().unwrap().unwrap();
        m.bytes().to_vec()
    };
    let mut bad = raw.clone();
    let root = std::mem::size_of::<mmapipc::rkyv::Archived<VideoFrame>>();
    let at = bad.len() - root + 32;
    bad[at..at + 4].copy_from_slice(&(-1_000_000i32).to_le_bytes());
    tx.ring().write(&bad).unwrap();
    tx.ring().write(&bad[..5]).unwrap(); // too short for the root
    tx.send(&frame(2)).unwrap();
    assert!(matches!(rx.try_recv(), Err(TypedRecvError::Invalid(_))));
    assert!(matches!(rx.try_recv(), Err(TypedRecvError::Invalid(_))));
    assert_eq!(rx.try_recv().unwrap().unwrap().seq, 2, "the channel goes on after bad messages");
    std::fs::remove_file(&p).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 64 }, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        let p = std::env::temp_dir().join(format!("mmapipc-typed-prop-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_file(&p);
        let mut tx = TypedRing::<VideoFrame>::create(&p, 1 << 16).unwrap();
        let mut rx = TypedRing::<VideoFrame>::open(&p).unwrap();
        for m in &msgs {
            tx.ring().write(m).unwrap();
            match rx.try_recv() {
                Ok(Some(g)) => { let _ = g.pixels.len(); }
                Ok(None) => prop_assert!(false, "message vanished"),
                Err(_) => {}
            }
        }
        std::fs::remove_file(&p).unwrap();
    }
}
