//! Heavy work (lookalike and reach scans, saved-audience builds) runs on rayon's global
//! pool; cheap calls (offers, similar items, customers) run on the tokio workers and never
//! touch it. The pool's threads run at a lower CPU priority, so when heavy calls fill the
//! cores the kernel still hands the cheap calls the CPU at once: admission control bounds
//! how many heavy calls run, this bounds what they cost the rest (measured with
//! `doppel bench load --overload-heavy`). Index builds and training use pools of their own
//! at normal priority.

/// How the heavy pool's threads are scheduled (`--heavy-scheduling`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeavyScheduling {
    /// `SCHED_IDLE`: heavy work runs only on CPU time no other thread wants, and a cheap
    /// call's thread takes the core back the moment it wakes. Offers keep their latency;
    /// while cheap calls saturate every core, heavy calls wait (their deadline and
    /// cancellation bound how long). Nothing a cheap call or a write waits for runs on
    /// this pool holding a lock: index scans read a copy of the index state, and a
    /// classifier's moments are computed from a pinned copy while fold-in goes on.
    #[default]
    Idle,
    /// nice +[`HEAVY_NICE`]: heavy work keeps a small share of a busy CPU (about a tenth
    /// against a nice-0 thread), at the cost of cheap calls' tail latency.
    Nice,
}

/// Nice value of the heavy pool's threads under [`HeavyScheduling::Nice`].
pub const HEAVY_NICE: i32 = 10;

/// Builds rayon's global pool with lowered-priority threads. Call it before any heavy
/// work; a pool that already exists is left as it is (and said so).
pub fn lower_heavy_pool_priority(scheduling: HeavyScheduling) {
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("doppel-heavy-{i}"))
        .start_handler(move |_| lower_this_thread(scheduling))
        .build_global();
    if let Err(e) = built {
        tracing::warn!(error = %e, "heavy work pool already built: its priority is unchanged");
    }
}

#[cfg(target_os = "linux")]
fn lower_this_thread(scheduling: HeavyScheduling) {
    let done = match scheduling {
        HeavyScheduling::Idle => {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: pid 0 is the calling thread on Linux; `param` outlives the call.
            // Moving a thread to SCHED_IDLE lowers it, which needs no privilege.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) }
        }
        // SAFETY: on Linux a thread has its own nice value, and `setpriority(PRIO_PROCESS,
        // 0, n)` changes only the calling thread's; it takes no pointers. Raising the nice
        // value needs no privilege.
        HeavyScheduling::Nice => unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HEAVY_NICE) },
    };
    if done != 0 {
        tracing::warn!(?scheduling, "could not lower the heavy pool's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread(_: HeavyScheduling) {}
