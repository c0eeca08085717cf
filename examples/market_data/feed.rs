//! Rust market-data feed: ticks written straight into a typed ring.
//!
//! ```text
//! cargo run --release -p mmapipc --example market_feed -- PATH COUNT [--v2 | --topic]
//! ```
//! The ring at PATH must exist with the `market.Tick` schema of the chosen version (run.py creates
//! it); with `--topic`, PATH is a `market.Tick` v1 topic whose subscribers are attached
//! (fanout.py), and every tick is published once for all of them. Prices follow a deterministic random walk per symbol; at the end the feed prints, as one
//! JSON line, the volume-weighted average price (VWAP) of every symbol, so a consumer's result can
//! be checked.

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mmapipc::typed::{TypedRing, TypedTopic};

use example_types::{Tick, TickV2};

const SYMBOLS: [&[u8; 8]; 8] = [
    b"AAPL\0\0\0\0",
    b"MSFT\0\0\0\0",
    b"GOOG\0\0\0\0",
    b"AMZN\0\0\0\0",
    b"NVDA\0\0\0\0",
    b"META\0\0\0\0",
    b"TSLA\0\0\0\0",
    b"NFLX\0\0\0\0",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: market_feed PATH COUNT [--v2]")?;
    let count: u64 = args.get(2).ok_or("missing COUNT")?.parse()?;
    let v2 = args.iter().any(|a| a == "--v2");
    let topic = if args.iter().any(|a| a == "--topic") { Some(TypedTopic::<Tick>::open(path)?) } else { None };
    let mut publisher = topic.as_ref().map(|t| t.publisher()).transpose()?;
    let mut v1_ring = if v2 || topic.is_some() { None } else { Some(TypedRing::<Tick>::open(path)?) };
    let mut v2_ring = if v2 { Some(TypedRing::<TickV2>::open(path)?) } else { None };
    let mut price = [100.0f64; 8];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut notional = [0.0f64; 8];
    let mut volume = [0u64; 8];
    let wait = Some(Duration::from_secs(30));
    let start = Instant::now();
    for i in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let s = (state % 8) as usize;
        price[s] = (price[s] + ((state >> 8) % 21) as f64 / 100.0 - 0.10).max(1.0);
        let size = 1 + ((state >> 20) % 500) as u32;
        let side = ((state >> 40) & 1) as u8;
        notional[s] += price[s] * f64::from(size);
        volume[s] += u64::from(size);
        let sent = match (&mut v1_ring, &mut v2_ring) {
            _ if publisher.is_some() => publisher.as_mut().map_or(Ok(false), |p| {
                p.send_timeout(&Tick { timestamp_ns: i, symbol: *SYMBOLS[s], price: price[s], size, side }, wait)
            })?,
            (Some(r), _) => {
                r.send_timeout(&Tick { timestamp_ns: i, symbol: *SYMBOLS[s], price: price[s], size, side }, wait)?
            }
            (_, Some(r)) => r.send_timeout(
                &TickV2 { timestamp_ns: i, symbol: *SYMBOLS[s], price: price[s], size, side, venue: (i % 3) as u16 },
                wait,
            )?,
            _ => unreachable!(),
        };
        if !sent {
            return Err("consumer stalled for 30 s".into());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("feed: {count} ticks in {secs:.2} s ({:.1} M ticks/s)", count as f64 / secs / 1e6);
    let vwap: BTreeMap<String, f64> = SYMBOLS
        .iter()
        .enumerate()
        .filter(|(i, _)| volume[*i] > 0)
        .map(|(i, sym)| {
            (String::from_utf8_lossy(&sym[..]).trim_end_matches('\0').to_string(), notional[i] / volume[i] as f64)
        })
        .collect();
    println!("{}", serde_json_line(&vwap));
    Ok(())
}

fn serde_json_line(vwap: &BTreeMap<String, f64>) -> String {
    let body: Vec<String> = vwap.iter().map(|(k, v)| format!("\"{k}\": {v:.10}")).collect();
    format!("{{{}}}", body.join(", "))
}
