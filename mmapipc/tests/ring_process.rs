//! The ring between two real processes: this test binary re-executes itself as the producer
//! (a child role, `common`), and the producer is SIGKILLed mid-stream.

#![cfg(not(loom))]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use mmapipc::Ring;

const MSG: usize = 100_000;

/// Message `seq`: its sequence number, a pattern, and a checksum of both.
fn message(seq: u64, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend((0..MSG).map(|i| (seq as usize + i * 13) as u8));
    let sum = checksum(buf);
    buf.extend_from_slice(&sum.to_le_bytes());
}

fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100000001b3))
}

/// Checks a received message and returns its sequence number.
fn verify(m: &[u8]) -> u64 {
    assert_eq!(m.len(), MSG + 16, "wrong length");
    let (body, sum) = m.split_at(MSG + 8);
    assert_eq!(checksum(body), u64::from_le_bytes(sum.try_into().unwrap()), "torn message");
    u64::from_le_bytes(body[..8].try_into().unwrap())
}

/// The child roles: `producer PATH` produces into the ring at PATH until killed.
fn roles(role: &str, args: &[String]) {
    match role {
        "producer" => {
            let mut ring = Ring::open(&args[0]).unwrap();
            let mut buf = Vec::new();
            for seq in 0.. {
                message(seq, &mut buf);
                ring.write(&buf).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

#[test]
fn producer_killed_mid_stream_leaves_only_whole_messages() {
    let path = std::env::temp_dir().join(format!("mmapipc-ring-kill-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut ring = Ring::create(&path, 1 << 20).unwrap();
    let mut child = common::child("producer", &[&path]).stdout(Stdio::null()).spawn().unwrap();
    let watchdog = Instant::now() + Duration::from_secs(60);
    let mut next = 0u64;
    while next < 50 {
        assert!(Instant::now() < watchdog, "child produced nothing (watchdog)");
        if let Some(g) = ring.read_timeout(Some(Duration::from_secs(1))).unwrap() {
            assert_eq!(verify(&g), next);
            next += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL, most likely mid-copy of a 100 kB message
    child.wait().unwrap();
    // Whatever was committed arrives whole and in order, then reads time out cleanly.
    while let Some(g) = ring.read_timeout(Some(Duration::from_millis(300))).unwrap() {
        assert_eq!(verify(&g), next);
        next += 1;
    }
    assert!(ring.try_read().unwrap().is_none());
    // The dead producer's role is taken over.
    assert!(ring.try_write(b"after").unwrap());
    assert_eq!(&*ring.read().unwrap(), b"after");
    ring.unlink().unwrap();
}
