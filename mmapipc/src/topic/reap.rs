//! The publisher's looks for dead subscribers: those that hold it back (block mode), and those
//! killed asleep, still counted in the data waiter's `sleepers`.

use std::time::Duration;

#[cfg(not(loom))]
use crate::sync::Ordering;
#[cfg(not(loom))]
use crate::wait::Sleeping;

#[cfg(not(loom))]
use super::layout::NO_GROUP;
use super::publisher::Publisher;

/// How long a blocked publisher goes between looks at whether the subscribers holding it back
/// still run (a `/proc` read each): the recovery bound for a killed subscriber, with one slice.
pub const REAP_INTERVAL: Duration = Duration::from_millis(5);

/// How often at most a publisher that finds sleepers to wake looks for slots of dead
/// processes still counted asleep ([`Publisher::reap_sleepers`], a `/proc` read per sleeping
/// slot): the longest a killed sleeper makes every publication a system call.
#[cfg(not(loom))]
const SLEEPER_REAP_INTERVAL: Duration = Duration::from_millis(100);

impl Publisher {
    /// Reclaims the slots of dead subscribers that hold positions below `need` (at most once per
    /// [`REAP_INTERVAL`]). True if one was reclaimed.
    pub(super) fn reap(&mut self, need: u64) -> bool {
        #[cfg(loom)]
        {
            let _ = need;
            false
        }
        #[cfg(not(loom))]
        {
            let now = std::time::Instant::now();
            if self.last_reap.is_some_and(|t| now.duration_since(t) < REAP_INTERVAL) {
                return false;
            }
            self.last_reap = Some(now);
            let mem = &*self.mem;
            let mut any = false;
            for i in 0..mem.nsubs {
                let e = mem.sub(i);
                // Relaxed: a candidate; the CAS in `reclaim` decides.
                let w = e.owner.load(Ordering::Relaxed);
                if w == 0 {
                    continue;
                }
                let g = e.group.load(Ordering::Relaxed);
                let pos = if g == NO_GROUP {
                    e.cursor.load(Ordering::Relaxed)
                } else if (g as usize) < mem.nsubs {
                    mem.group(g as usize).cursor.load(Ordering::Relaxed)
                } else {
                    0 // a hostile group index: the slot is checked like any other
                };
                if pos < need && !crate::owner::alive(w) {
                    any |= super::subscriber::reclaim(mem, i, w);
                }
            }
            any
        }
    }

    /// Reclaims the slots of dead subscribers still counted in the data waiter's `sleepers`
    /// (killed asleep: their slot's `sleeping` word names them), which takes their counts back,
    /// so that publishing goes back to making no system call. Runs only on the wake's slow path,
    /// at most once per [`SLEEPER_REAP_INTERVAL`].
    #[cold]
    pub(super) fn reap_sleepers(&mut self) {
        #[cfg(not(loom))]
        {
            let now = std::time::Instant::now();
            if self.last_sleeper_reap.is_some_and(|t| now.duration_since(t) < SLEEPER_REAP_INTERVAL) {
                return;
            }
            self.last_sleeper_reap = Some(now);
            let mem = &*self.mem;
            for i in 0..mem.nsubs {
                let e = mem.sub(i);
                // Relaxed: candidates; `reclaim` and `take_back` decide with CASes.
                let w = e.sleeping.load(Ordering::Relaxed);
                if w == 0 || crate::owner::alive(w) {
                    continue;
                }
                if e.owner.load(Ordering::Relaxed) == w {
                    super::subscriber::reclaim(mem, i, w);
                } else {
                    // A sleeper that was not the slot's owner (a forked child's inherited
                    // handle): only its count.
                    Sleeping { word: &e.sleeping, owner: w }.take_back(&mem.head().wait.data);
                }
            }
        }
    }
}
