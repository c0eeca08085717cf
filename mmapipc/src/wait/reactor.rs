//! The per-process waiter threads behind [`Notifier`](super::readiness::Notifier): each blocks
//! on the `seq` words of the watches registered with it and signals their eventfds.
//!
//! * **`futex_waitv`** (Linux 5.16 and later): one thread waits on up to [`PER_THREAD`] watches
//!   at once, plus its own control word (bumped whenever its list changes); a process
//!   awaiting 100 channels runs one thread. More watches start more threads.
//! * **Fallback** (older kernels, a seccomp filter that refuses the call, or the environment
//!   variable `MMAPIPC_NO_FUTEX_WAITV=1`): one thread per registered watch, blocked in plain
//!   `FUTEX_WAIT` on that watch's `seq` (cancelling a registration bumps that `seq` to wake
//!   it: the channel's other sleepers re-check and sleep again). Threads stay for later
//!   registrations: as many as were ever registered at once.
//!
//! Every scan runs under the thread's lock: read `seq`, check [`Watch::ready`], fire and
//! unregister, or keep the word for the wait (see `readiness.rs` for why nothing is lost). The
//! thread holds a clone of every watch it waits on, so a channel's memory stays mapped until
//! the thread has left the wait that names it. A forked child forgets the registry (its
//! threads do not exist there; the parent's one is leaked in the child, its locks may be held)
//! and builds a new one at its first registration.

use std::io;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::futex::{wait_on, wake_all};
use super::watch::{EventFd, Watch};

/// Watches per `futex_waitv` thread (the call takes 128 words; one is the control word).
pub(crate) const PER_THREAD: usize = 127;

/// `FUTEX2_SIZE_U32`: the word is 32 bits (shared, not `FUTEX2_PRIVATE`: peers are processes).
const FUTEX2_SIZE_U32: u32 = 0x02;

/// The kernel's `struct futex_waitv`.
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

struct Reg {
    id: u64,
    watch: Arc<dyn Watch>,
    fd: Arc<EventFd>,
    /// Longest wait before a re-check (a watch whose heavy barrier failed).
    nap: Option<Duration>,
}

struct Shard {
    /// Bumped (and woken) whenever `regs` changes.
    ctl: AtomicU32,
    regs: Mutex<Vec<Reg>>,
    waitv: bool,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Vec<Reg>> {
        self.regs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        // Release: a thread that reads the new value sees the list change (it also takes the
        // lock); one that read the old value has its wait fail or woken here.
        self.ctl.fetch_add(1, Ordering::Release);
        wake_all(&self.ctl);
    }
}

/// A registration, to cancel it or ask whether it is still pending.
pub(crate) struct Ticket {
    shard: Arc<Shard>,
    id: u64,
}

struct Reactor {
    shards: Mutex<Vec<Arc<Shard>>>,
    waitv: bool,
    next_id: AtomicU64,
}

/// This process's registry (leaked: threads reference it for the life of the process).
static REACTOR: AtomicPtr<Reactor> = AtomicPtr::new(std::ptr::null_mut());
/// Waiter threads started in this process.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The fork hook: a child starts with no registry and no threads (async-signal-safe stores).
fn forget() {
    REACTOR.store(std::ptr::null_mut(), Ordering::Relaxed);
    THREADS.store(0, Ordering::Relaxed);
}

fn reactor() -> &'static Reactor {
    // Acquire pairs with the AcqRel CAS that published the registry.
    let p = REACTOR.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: non-null values are leaked boxes, never freed.
        return unsafe { &*p };
    }
    crate::fork::on_child(forget);
    let forced_off = std::env::var_os("MMAPIPC_NO_FUTEX_WAITV").is_some_and(|v| v == "1");
    let fresh = Box::into_raw(Box::new(Reactor {
        shards: Mutex::new(Vec::new()),
        waitv: !forced_off && waitv_supported(),
        next_id: AtomicU64::new(1),
    }));
    match REACTOR.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: we just published our leaked box.
        Ok(_) => unsafe { &*fresh },
        Err(cur) => {
            // SAFETY: `fresh` was never shared; `cur` is a leaked box of the winner.
            unsafe {
                drop(Box::from_raw(fresh));
                &*cur
            }
        }
    }
}

fn waitv_supported() -> bool {
    // SAFETY: zero waiters and no timeout: the kernel reads no memory and fails at once,
    // with EINVAL where the call exists and ENOSYS (or EPERM under seccomp) where it does not.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            std::ptr::null::<FutexWaitv>(),
            0u32,
            0u32,
            std::ptr::null::<libc::timespec>(),
            0,
        )
    };
    r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
}

/// Blocks until a word differs from its value, one is woken, or `timeout` passes.
fn futex_waitv(list: &[FutexWaitv], timeout: Option<Duration>) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let ts_ptr = match timeout {
        Some(d) => {
            // SAFETY: writes the current monotonic time into our local timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            let ns = ts.tv_nsec as u64 + u64::from(d.subsec_nanos());
            ts.tv_sec =
                ts.tv_sec.saturating_add((d.as_secs() + ns / 1_000_000_000).min(i32::MAX as u64) as libc::time_t);
            ts.tv_nsec = (ns % 1_000_000_000) as libc::c_long;
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `list` holds valid, 4-aligned u32 addresses whose memory the caller keeps mapped
    // (it holds the watches) and `ts` outlives the call. Every error (EAGAIN: a value
    // changed, ETIMEDOUT, EINTR, EFAULT) means "return and re-check", the caller's contract.
    unsafe {
        libc::syscall(libc::SYS_futex_waitv, list.as_ptr(), list.len() as u32, 0u32, ts_ptr, libc::CLOCK_MONOTONIC);
    }
}

fn min_nap(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn run(shard: Arc<Shard>) {
    let mut list: Vec<FutexWaitv> = Vec::with_capacity(PER_THREAD + 1);
    let mut keep: Vec<Arc<dyn Watch>> = Vec::with_capacity(PER_THREAD);
    loop {
        list.clear();
        keep.clear();
        // Acquire, read before the scan: a list change after it makes the wait return.
        let ctl = shard.ctl.load(Ordering::Acquire);
        let mut nap = None;
        shard.lock().retain(|r| {
            let w = r.watch.waiter();
            // SYNC: sleep-handshake / asym-handshake: seq read (Acquire) before the re-check,
            // so a bump after the re-check makes the wait below return at once.
            let seq = w.seq.load(Ordering::Acquire);
            if r.watch.ready() {
                // Relaxed: the count only gates the wakers' syscall; this registration ends.
                w.sleepers.fetch_sub(1, Ordering::Relaxed);
                r.fd.signal();
                return false;
            }
            list.push(FutexWaitv {
                val: u64::from(seq),
                uaddr: w.seq.as_ptr() as u64,
                flags: FUTEX2_SIZE_U32,
                reserved: 0,
            });
            keep.push(r.watch.clone());
            nap = min_nap(min_nap(nap, r.nap), r.watch.poll_interval());
            true
        });
        if shard.waitv {
            list.push(FutexWaitv {
                val: u64::from(ctl),
                uaddr: shard.ctl.as_ptr() as u64,
                flags: FUTEX2_SIZE_U32,
                reserved: 0,
            });
            futex_waitv(&list, nap);
        } else if let (Some(one), Some(w)) = (list.first(), keep.first()) {
            wait_on(&w.waiter().seq, one.val as u32, nap);
        } else {
            wait_on(&shard.ctl, ctl, nap);
        }
    }
}

/// Registers `watch` (whose `sleepers` the caller already counted) to signal `fd`.
pub(crate) fn register(watch: Arc<dyn Watch>, fd: Arc<EventFd>, nap: Option<Duration>) -> io::Result<Ticket> {
    let r = reactor();
    // Relaxed: ids only need to be unique.
    let id = r.next_id.fetch_add(1, Ordering::Relaxed);
    let room = if r.waitv { PER_THREAD } else { 1 };
    let mut shards = r.shards.lock().unwrap_or_else(|e| e.into_inner());
    let found = shards.iter().find(|s| s.lock().len() < room).cloned();
    let shard = match found {
        Some(s) => s,
        None => {
            let s = Arc::new(Shard { ctl: AtomicU32::new(0), regs: Mutex::new(Vec::new()), waitv: r.waitv });
            let t = s.clone();
            std::thread::Builder::new().name("mmapipc-wait".into()).stack_size(128 * 1024).spawn(move || run(t))?;
            THREADS.fetch_add(1, Ordering::Relaxed);
            shards.push(s.clone());
            s
        }
    };
    // Pushed before the registry's lock is released: two registrations cannot both take the
    // last place of one thread (`futex_waitv` takes at most 128 words).
    shard.lock().push(Reg { id, watch, fd, nap });
    drop(shards);
    shard.changed();
    Ok(Ticket { shard, id })
}

/// Drops a registration that has not fired (its sleeper count with it). True if it was there.
pub(crate) fn cancel(t: Ticket) -> bool {
    let mut regs = t.shard.lock();
    let Some(i) = regs.iter().position(|r| r.id == t.id) else { return false };
    let reg = regs.swap_remove(i);
    drop(regs);
    let w = reg.watch.waiter();
    // Relaxed: as in `run`.
    w.sleepers.fetch_sub(1, Ordering::Relaxed);
    if !t.shard.waitv {
        // The fallback thread sleeps on this seq word, not on its control word: wake it there
        // (Release: as any waker's bump).
        w.seq.fetch_add(1, Ordering::Release);
        wake_all(&w.seq);
    }
    t.shard.changed();
    true
}

/// True while the registration is there (not fired, not cancelled).
pub(crate) fn pending(t: &Ticket) -> bool {
    t.shard.lock().iter().any(|r| r.id == t.id)
}

pub(crate) fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

pub(crate) fn uses_waitv() -> bool {
    reactor().waitv
}
