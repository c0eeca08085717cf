//! Loans ([`Queue::loan`]): order with puts, abandoning, the wrap, sizes, other producers.

use std::sync::Arc;
use std::time::Duration;

use super::*;

fn loan_put(q: &Queue, payload: &[u8]) {
    let mut l = q.loan(payload.len(), Some(Duration::ZERO)).unwrap().expect("room");
    assert_eq!(l.len(), payload.len());
    l.fill(|s| s.copy_from_slice(payload));
    l.commit().unwrap();
}

#[test]
fn loans_commit_in_order_with_puts() {
    let q = Queue::heap(1024).unwrap();
    q.try_put(b"first").unwrap();
    loan_put(&q, b"loaned");
    q.try_put(b"third").unwrap();
    let mut l = q.loan(3, None).unwrap().unwrap();
    // SAFETY: the loan's payload is 3 writable bytes, ours until the commit.
    unsafe { std::ptr::copy_nonoverlapping(b"raw".as_ptr(), l.as_mut_ptr(), 3) };
    l.commit().unwrap();
    for want in [&b"first"[..], b"loaned", b"third", b"raw"] {
        assert_eq!(q.try_get().unwrap().as_deref(), Some(want));
    }
    assert_eq!(q.try_get().unwrap(), None);
    let s = q.stats();
    assert_eq!((s.messages_in, s.bytes_in), (4, 5 + 6 + 5 + 3));
}

#[test]
fn a_dropped_loan_publishes_nothing_and_frees_the_lock() {
    let q = Queue::heap(256).unwrap();
    q.try_put(b"kept").unwrap();
    let mut l = q.loan(100, Some(Duration::ZERO)).unwrap().unwrap();
    l.fill(|s| s.fill(0xEE));
    assert_eq!(q.len(), 1, "nothing of the loan is visible before its commit");
    drop(l);
    assert_eq!(q.len(), 1);
    assert!(q.try_put(b"next").unwrap(), "the producer lock went with the loan");
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"next"[..]));
    assert_eq!(q.try_get().unwrap(), None);
    assert_eq!(q.stats().messages_in, 2);
}

#[test]
fn a_loan_too_large_is_refused_and_a_full_queue_times_out() {
    let q = Queue::heap(256).unwrap();
    assert_eq!(q.loan(241, None).unwrap_err(), QueueError::TooLarge { len: 241, max: 240 });
    loan_put(&q, &[1; 200]);
    assert!(q.loan(100, Some(Duration::ZERO)).unwrap().is_none());
    assert!(q.loan(100, Some(Duration::from_millis(20))).unwrap().is_none());
    assert_eq!(q.try_get().unwrap(), Some(vec![1; 200]));
    loan_put(&q, &[2; 100]);
    assert_eq!(q.try_get().unwrap(), Some(vec![2; 100]));
}

#[test]
fn loans_wrap_behind_a_padding_record() {
    let q = Queue::heap(256).unwrap();
    for round in 0..20u8 {
        // Records of 120 bytes in a 256-byte ring: every second one wraps.
        loan_put(&q, &[round; 100]);
        let mut l = q.loan(60, Some(Duration::ZERO)).unwrap().unwrap();
        l.fill(|s| s.fill(round ^ 0xFF));
        if round % 3 == 0 {
            drop(l); // abandoned, maybe after writing a padding record for it
        } else {
            l.commit().unwrap();
        }
        assert_eq!(q.try_get().unwrap(), Some(vec![round; 100]));
        if round % 3 != 0 {
            assert_eq!(q.try_get().unwrap(), Some(vec![round ^ 0xFF; 60]));
        }
        assert_eq!(q.try_get().unwrap(), None);
    }
}

#[test]
fn other_producers_wait_for_a_loan() {
    let q = Arc::new(Queue::heap(4096).unwrap());
    let mut l = q.loan(8, None).unwrap().unwrap();
    assert!(!q.try_put(b"x").unwrap(), "the loan holds the producer lock");
    assert!(!q.put_timeout(b"x", Some(Duration::from_millis(20))).unwrap());
    let p = Arc::clone(&q);
    let other = std::thread::spawn(move || p.put_timeout(b"after", Some(Duration::from_secs(60))).unwrap());
    l.fill(|s| s.copy_from_slice(b"loaned!!"));
    l.commit().unwrap();
    assert!(other.join().unwrap());
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"loaned!!"[..]));
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"after"[..]));
}

#[test]
fn an_owned_loan_commits_from_another_thread() {
    let q = Arc::new(Queue::heap(4096).unwrap());
    let mut l = q.loan_owned(4, Some(Duration::ZERO)).unwrap().unwrap();
    l.fill(|s| s.copy_from_slice(b"abcd"));
    std::thread::spawn(move || l.commit().unwrap()).join().unwrap();
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"abcd"[..]));
}

#[test]
fn frames_through_loans_reuse_the_released_half() {
    // As `frames_reuse_the_released_half...` for puts: a frame loaned after the previous one
    // was released goes to offset 0 again.
    let frame = 4 << 20;
    let q = Queue::heap(2 * (frame + 4096)).unwrap();
    let mut at = Vec::new();
    for i in 0..4u8 {
        let mut l = q.loan(frame, Some(Duration::ZERO)).unwrap().unwrap();
        at.push(l.as_mut_ptr() as usize);
        l.fill(|s| s.fill(i));
        l.commit().unwrap();
        let v = q.try_get_view().unwrap().unwrap();
        assert!(v.iter().all(|&b| b == i));
    }
    assert!(at.iter().all(|&a| a == at[0]), "frames at {at:x?}");
}
