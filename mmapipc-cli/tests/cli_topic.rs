//! The `mmapipc` tool on a live topic: `ls`, `inspect`, `stat` and `tail` show the publisher,
//! the subscribers with their lag, groups and dead subscribers; `doctor` reports the dead ones.

#[path = "../../mmapipc/tests/common/mod.rs"]
mod common;
mod tool;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mmapipc::topic::{Start, Topic, TopicOptions};
use tool::{json_of, lines, scratch, stdout, tool};

/// `publisher PATH` publishes forever; `slow PATH` subscribes and reads slowly; `member PATH`
/// joins group "workers"; `holder PATH` subscribes and never reads. Each prints "ready".
fn roles(role: &str, args: &[String]) {
    let t = Topic::open(&args[0]).unwrap();
    match role {
        "publisher" => {
            let mut p = t.publisher().unwrap();
            println!("ready");
            for i in 0u64.. {
                let _ = p.publish_timeout(format!("tick {i}").as_bytes(), Some(Duration::from_millis(50)));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        "slow" | "member" => {
            let mut s = if role == "slow" {
                t.subscribe(Start::Latest).unwrap()
            } else {
                t.subscribe_group("workers", Start::Latest).unwrap()
            };
            println!("ready");
            loop {
                drop(s.recv_timeout(Some(Duration::from_millis(50))));
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        "holder" => {
            let _s = t.subscribe(Start::Latest).unwrap();
            println!("ready");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

fn spawn(role: &str, path: &Path) -> std::process::Child {
    let mut c = common::child(role, &[path]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{role} did not start");
    c
}

#[test]
fn topic_subscribers_lag_groups_and_dead_subscribers() {
    let dir = scratch("topic");
    let path = dir.join("feed");
    let p = path.to_str().unwrap();
    drop(Topic::create_with(&path, 1 << 16, &TopicOptions { max_subscribers: 8, ..Default::default() }).unwrap());
    let mut kids = vec![spawn("slow", &path), spawn("member", &path), spawn("holder", &path)];
    kids.push(spawn("publisher", &path));
    // Wait until messages flow and the holder's lag shows.
    let deadline = Instant::now() + Duration::from_secs(30);
    let j = loop {
        let j = json_of(&tool(&["inspect", "--json", p]));
        if j["live"]["topic"]["subscribers"].as_array().is_some_and(|s| s.len() == 3)
            && j["live"]["counters"]["messages_in"].as_u64().unwrap_or(0) > 20
        {
            break j;
        }
        assert!(Instant::now() < deadline, "the topic never came alive: {j}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(j["kind"], "topic");
    let subs = j["live"]["topic"]["subscribers"].as_array().unwrap();
    assert!(subs.iter().all(|s| s["alive"] == true));
    assert!(subs.iter().any(|s| s["group"] == "workers"));
    assert!(subs.iter().any(|s| s["lag"].as_u64().unwrap() > 0), "the holder lags: {j}");
    assert_eq!(j["live"]["topic"]["groups"][0]["name"], "workers");

    let ls = stdout(&tool(&["ls", dir.to_str().unwrap()]));
    let row = ls.lines().find(|l| l.starts_with("feed")).expect("a row for the topic");
    assert!(row.contains("topic") && row.contains("P:") && row.contains("S:") && row.contains("G:"), "{ls}");

    let text = stdout(&tool(&["inspect", p]));
    assert!(text.contains("kind            topic") && text.contains("group workers"), "{text}");

    let tail = lines(&tool(&["tail", "-n", "3", p]));
    assert_eq!(tail.len(), 3, "{tail:?}");
    assert!(tail.iter().all(|l| l.contains("tick")), "{tail:?}");

    let stat = tool(&["stat", "--json", "--count", "1", "--interval", "0.2", p]);
    let stat = json_of(&stat);
    assert!(stat["msgs_per_s_in"].as_f64().unwrap() > 0.0, "{stat}");

    // Kill the holder: its slot names a dead process until the publisher reclaims it.
    let mut holder = kids.remove(2);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let j = json_of(&tool(&["inspect", "--json", p]));
    let dead = j["live"]["topic"]["subscribers"].as_array().unwrap().iter().filter(|s| s["alive"] == false).count();
    let reclaimed = j["live"]["counters"]["view_recoveries"].as_u64().unwrap();
    assert_eq!(dead as u64 + reclaimed, 1, "dead or already reclaimed: {j}");
    if dead == 1 {
        let doc = stdout(&tool(&["doctor", dir.to_str().unwrap()]));
        assert!(doc.contains("names dead pid"), "{doc}");
    }
    for mut k in kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
