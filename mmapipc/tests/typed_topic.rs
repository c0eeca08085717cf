//! Typed topics: a fixed-size and a variable-size record type fanned out to subscribers in
//! another process, overwrite mode (validated copies), groups, and the schema refusals.

#![cfg(not(loom))]

mod common;

#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::PathBuf;
use std::time::Duration;

use example_types::{Tick, VideoFrame};
use mmapipc::topic::{Overflow, Start, TopicOptions};
use mmapipc::typed::TypedTopic;
use mmapipc::{TypedOpenError, TypedRecvError};

const N: u64 = 2_000;

fn path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-typedt-{tag}-{}", std::process::id()));
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

/// `ticks PATH` / `frames PATH`: subscribe, print "ready", check N records in order.
fn roles(role: &str, args: &[String]) {
    let wait = Some(Duration::from_secs(60));
    match role {
        "ticks" => {
            let t = TypedTopic::<Tick>::open(&args[0]).unwrap();
            let mut s = t.subscribe(Start::Latest).unwrap();
            println!("ready");
            for i in 0..N {
                let m = s.recv_timeout(wait).unwrap().expect("publisher went quiet");
                assert_eq!((m.timestamp_ns.to_native(), m.size.to_native()), (i, i as u32));
            }
        }
        "frames" => {
            let t = TypedTopic::<VideoFrame>::open(&args[0]).unwrap();
            let mut s = t.subscribe(Start::Latest).unwrap();
            println!("ready");
            for i in 0..N {
                let m = s.recv_timeout(wait).unwrap().expect("publisher went quiet");
                assert_eq!(m.seq, i);
                assert_eq!(m.pixels.as_slice(), frame(i).pixels.as_slice());
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

fn ready(role: &str, p: &std::path::Path) -> std::process::Child {
    use std::io::BufRead;
    let mut c = common::child(role, &[p]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    c
}

#[test]
fn fixed_and_variable_records_fan_out_to_other_processes() {
    let p = path("ticks");
    let t = TypedTopic::<Tick>::create(&p, 1 << 14, &TopicOptions::default()).unwrap();
    let kids: Vec<_> = (0..2).map(|_| ready("ticks", &p)).collect();
    let mut local = t.subscribe(Start::Latest).unwrap();
    let mut tx = t.publisher().unwrap();
    for i in 0..N {
        tx.send(&tick(i)).unwrap();
        assert_eq!(local.try_recv().unwrap().unwrap().size, i as u32);
    }
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    std::fs::remove_file(&p).unwrap();

    let p = path("frames");
    let t = TypedTopic::<VideoFrame>::create(&p, 1 << 14, &TopicOptions::default()).unwrap();
    let mut kid = ready("frames", &p);
    let mut tx = t.publisher().unwrap();
    for i in 0..N {
        tx.send(&frame(i)).unwrap();
    }
    assert!(kid.wait().unwrap().success());
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn overwrite_mode_and_groups_deliver_validated_records() {
    let p = path("over");
    let opts = TopicOptions { overflow: Overflow::Overwrite, ..TopicOptions::default() };
    let t = TypedTopic::<Tick>::create(&p, 4096, &opts).unwrap();
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut g = t.subscribe_group("g", Start::Latest).unwrap();
    let mut tx = t.publisher().unwrap();
    for i in 0..1000 {
        assert!(tx.send_timeout(&tick(i), Some(Duration::ZERO)).unwrap());
    }
    let mut last = None;
    let mut n = 0;
    while let Some(m) = s.try_recv().unwrap() {
        assert!(last.is_none_or(|l| m.timestamp_ns.to_native() > l));
        last = Some(m.timestamp_ns.to_native());
        n += 1;
    }
    assert_eq!(n + s.bytes().dropped(), 1000);
    assert_eq!(last, Some(999));
    assert!(g.try_recv().unwrap().is_some());
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn a_reader_of_another_type_is_refused_and_garbage_is_an_error() {
    let p = path("refuse");
    let t = TypedTopic::<Tick>::create(&p, 4096, &TopicOptions::default()).unwrap();
    assert!(matches!(TypedTopic::<VideoFrame>::open(&p), Err(TypedOpenError::Mismatch(_))));
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut raw = mmapipc::Topic::open(&p).unwrap().publisher().unwrap();
    raw.try_publish(b"not a tick").unwrap();
    assert!(matches!(s.try_recv(), Err(TypedRecvError::Invalid(_))));
    std::fs::remove_file(&p).unwrap();
}
