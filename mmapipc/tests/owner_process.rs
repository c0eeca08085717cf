//! Dead holders and dead creators between real processes: a child forked by the test claims a
//! ring role (or creates a file) and is SIGKILLed; the test, its parent, does not reap it before
//! checking, so the child is a zombie, as under a supervisor that restarts a crashed child before
//! it calls `wait`.

#![cfg(all(not(loom), target_os = "linux"))]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mmapipc::process::{self, ProcessId};
use mmapipc::region::{creating_name, parse_creating_name};
use mmapipc::{OpenError, Queue, Ring, RingError};

/// A forked child: runs `f` then reports one byte on a pipe (0 = ok) and waits to be killed.
struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    /// Forks; the child runs `f` (its result byte goes to the returned reader) and then sleeps
    /// until killed (`stay`), or exits.
    fn fork(stay: bool, f: impl FnOnce() -> bool) -> (Child, i32) {
        // Run the library's one-time set-up (fork handlers) here first: the tests of this file
        // run in parallel threads, and a child forked while another thread is inside a
        // `std::sync::Once` would find it running forever.
        mmapipc::owner::me();
        Ring::heap(64).unwrap().claim_producer().unwrap();
        let mut fds = [0; 2];
        // SAFETY: fds is an array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child runs only this crate's code (file opens, mmap, atomics and glibc's
        // malloc, which glibc keeps usable in a forked child), never returns into the test
        // harness, and leaves with _exit (no destructors, no atexit handlers).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(false);
            let b = [u8::from(!ok)];
            // SAFETY: fds[1] is the pipe's write end; b is one readable byte.
            unsafe { libc::write(fds[1], b.as_ptr().cast(), 1) };
            if stay {
                loop {
                    // SAFETY: pause has no preconditions; the child waits here for its SIGKILL.
                    unsafe { libc::pause() };
                }
            }
            // SAFETY: leaves the forked child at once, running nothing of the parent's.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: our copy of the write end; closed so that a dead child reads as EOF.
        unsafe { libc::close(fds[1]) };
        (Child { pid, reaped: false }, fds[0])
    }

    fn id(&self) -> ProcessId {
        let pid = self.pid as u32;
        ProcessId { pid, start_time: process::start_time(pid).expect("child has a /proc entry") }
    }

    /// The state letter of `/proc/<pid>/stat` (`Z` zombie, `T` stopped, ...).
    fn state(&self) -> Option<u8> {
        let stat = std::fs::read(format!("/proc/{}/stat", self.pid)).ok()?;
        let close = stat.iter().rposition(|&b| b == b')')?;
        stat.get(close + 2).copied()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signals our own child, which has not been reaped (its pid is still ours).
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0);
    }

    /// Waits (generously) until the child's state is one of `states`.
    fn wait_state(&self, states: &[u8]) {
        let watchdog = Instant::now() + Duration::from_secs(60);
        while !self.state().is_some_and(|s| states.contains(&s)) {
            assert!(Instant::now() < watchdog, "child {} never reached state {states:?}", self.pid);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILLs the child and waits until it is a zombie, without reaping it.
    fn kill_leave_zombie(&self) {
        self.signal(libc::SIGKILL);
        self.wait_state(b"ZX");
    }

    fn reap(&mut self) {
        if !self.reaped {
            let mut status = 0;
            // SAFETY: reaps our own child; status is a valid int.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
            self.reaped = true;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: our own, unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.reap();
        }
    }
}

/// Reads the child's one report byte (0 = its part went well).
fn report(fd: i32) -> Option<u8> {
    let mut b = [0u8; 1];
    // SAFETY: fd is the pipe's read end; b has room for one byte.
    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
    // SAFETY: closes the read end once.
    unsafe { libc::close(fd) };
    (n == 1).then_some(b[0])
}

fn temp_path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-owner-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn killed_unreaped_producer_is_replaced() {
    let path = temp_path("ring-zombie");
    let mut consumer = Ring::create(&path, 4096).unwrap();
    let p = path.clone();
    let (mut child, fd) = Child::fork(true, move || {
        let mut ring = Ring::open(&p).unwrap();
        let ok = ring.try_write(b"from the child").unwrap();
        std::mem::forget(ring); // keeps the role until the child dies
        ok
    });
    assert_eq!(report(fd), Some(0), "the child could not produce");
    // A live producer is refused.
    let mut second = Ring::open(&path).unwrap();
    assert!(matches!(second.claim_producer(), Err(RingError::AlreadyAttached { pid, .. }) if pid == child.pid as u32));
    child.kill_leave_zombie();
    // The zombie still has its /proc entry and start time, but it holds nothing any more.
    assert!(process::start_time(child.pid as u32).is_some());
    second.claim_producer().expect("a killed, unreaped producer is taken over");
    assert!(second.try_write(b"after").unwrap());
    assert_eq!(&*consumer.read().unwrap(), b"from the child");
    assert_eq!(&*consumer.read().unwrap(), b"after");
    child.reap();
    consumer.unlink().unwrap();
}

#[test]
fn killed_unreaped_consumer_is_replaced() {
    let path = temp_path("ring-zombie-consumer");
    let mut producer = Ring::create(&path, 4096).unwrap();
    assert!(producer.try_write(b"one").unwrap());
    assert!(producer.try_write(b"two").unwrap());
    let p = path.clone();
    let (mut child, fd) = Child::fork(true, move || {
        let mut ring = Ring::open(&p).unwrap();
        let ok = ring.try_read().unwrap().is_some_and(|m| &*m == b"one");
        std::mem::forget(ring); // keeps the role until the child dies
        ok
    });
    assert_eq!(report(fd), Some(0), "the child could not consume");
    let mut consumer = Ring::open(&path).unwrap();
    assert!(matches!(consumer.claim_consumer(), Err(RingError::AlreadyAttached { .. })));
    child.kill_leave_zombie();
    assert_eq!(&*consumer.read().expect("a killed, unreaped consumer is taken over"), b"two");
    child.reap();
    producer.unlink().unwrap();
}

/// Free bytes in the file system holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs is plain data; zeroed is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid path, st a valid out pointer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

/// A creator SIGKILLed while it reserves the pages of a large queue leaves nothing at the final
/// path: an opener meanwhile finds no file (not a corrupt one), and a new create succeeds. Only
/// its temporary name stays, which says whose it was.
#[test]
fn creator_killed_mid_create_leaves_nothing_at_the_path() {
    let dir = Path::new("/dev/shm");
    let free = free_bytes(dir);
    // Reserving pages takes about 0.25 s per GiB: 2 GiB keep the creator busy long enough to be
    // stopped in the middle on a loaded machine; less where /dev/shm is small.
    let size = (2u64 << 30).min(free / 3);
    if size < 256 << 20 {
        eprintln!("skipped: /dev/shm has {free} bytes free, fewer than the 768 MiB this test needs");
        return;
    }
    let name = format!("mmapipc-test-creator-{}", std::process::id());
    let path = dir.join(&name);
    let _ = std::fs::remove_file(&path);
    for attempt in 0.. {
        assert!(attempt < 5, "the creator finished before it could be stopped, 5 times");
        let p = path.clone();
        let (mut child, fd) = Child::fork(false, move || Queue::create(&p, size as usize).is_ok());
        let temp = dir.join(creating_name(&name, child.id()));
        // Wait for the temporary name (the creator has begun), or for the end of the create.
        let watchdog = Instant::now() + Duration::from_secs(120);
        while !temp.exists() && !path.exists() {
            let state = child.state();
            assert!(!matches!(state, Some(b'Z' | b'X')), "the creator exited before it began");
            if Instant::now() > watchdog {
                let stack = std::fs::read_to_string(format!("/proc/{}/stack", child.pid)).unwrap_or_default();
                panic!("the creator never began (state {:?}, kernel stack {stack})", state.map(char::from));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(50));
        child.signal(libc::SIGSTOP);
        child.wait_state(b"TtZX");
        if path.exists() {
            // Only a complete file may stand there: then the create was done before it was
            // stopped, too fast to test this time.
            if let Err(e) = Queue::open(&path) {
                panic!("a half-created file stands at the final path: {e}");
            }
            child.signal(libc::SIGKILL);
            child.reap();
            let _ = report(fd);
            std::fs::remove_file(&path).unwrap();
            continue;
        }
        // Stopped in the middle of create: the final path does not exist yet.
        assert!(matches!(Queue::open(&path), Err(OpenError::NotFound { .. })), "{:?}", Queue::open(&path));
        child.signal(libc::SIGKILL);
        child.reap();
        assert_eq!(report(fd), None, "the creator was killed before it reported");
        assert!(!path.exists(), "a half-created file stands at the final path");
        assert!(matches!(Queue::open(&path), Err(OpenError::NotFound { .. })));
        // The leftover temporary name names its dead creator.
        assert!(temp.exists(), "the killed creator's temporary file is left for tools to find");
        let (final_name, who) = parse_creating_name(temp.file_name().unwrap()).unwrap();
        assert_eq!(final_name, OsStr::new(&name));
        assert_eq!(who.pid, child.pid as u32);
        assert!(!mmapipc::owner::process_alive(who));
        // A restarted create succeeds.
        let q = Queue::create(&path, 4096).expect("a new create after a killed creator");
        assert!(q.try_put(b"x").unwrap());
        q.unlink().unwrap();
        std::fs::remove_file(&temp).unwrap();
        break;
    }
}

#[test]
fn create_leaves_no_temporary_name_and_keeps_o_excl() {
    let path = temp_path("excl");
    let name = path.file_name().unwrap().to_owned();
    let q = Queue::create(&path, 4096).unwrap();
    let dir = path.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| parse_creating_name(e.file_name()).is_some_and(|(n, _)| n == name))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(matches!(Queue::create(&path, 4096), Err(OpenError::AlreadyExists { .. })));
    assert!(matches!(Ring::create(&path, 4096), Err(OpenError::AlreadyExists { .. })));
    // A dangling symlink at the path is a taken path too, never followed.
    q.unlink().unwrap();
    std::os::unix::fs::symlink(dir.join("mmapipc-owner-nowhere"), &path).unwrap();
    assert!(matches!(Ring::create(&path, 4096), Err(OpenError::AlreadyExists { .. })));
    assert!(!dir.join("mmapipc-owner-nowhere").exists());
    std::fs::remove_file(&path).unwrap();
}

/// A process that can open no file (its descriptor limit reached) cannot read `/proc`: that
/// says nothing of the holder it asks about, which must still count as alive (a reaper that
/// took it for dead would hand a live subscriber's or producer's place to someone else).
#[test]
fn a_live_holder_stays_alive_when_proc_cannot_be_read() {
    let parent = mmapipc::owner::me();
    let (mut child, fd) = Child::fork(false, move || {
        mmapipc::owner::me(); // our own identity is known before the limit
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: reads this process's limit into `limit`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        limit.rlim_cur = 0;
        // SAFETY: lowers this (forked, single-threaded) child's soft descriptor limit to 0.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let unreadable = std::fs::read(format!("/proc/{}/stat", mmapipc::owner::pid(parent))).is_err();
        let alive = mmapipc::owner::alive(parent);
        unreadable && alive
    });
    assert_eq!(report(fd), Some(0), "the parent was taken for dead while /proc could not be read");
    child.reap();
}
