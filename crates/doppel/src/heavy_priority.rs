//! Heavy work (lookalike and reach scans, saved-audience builds, training) runs on rayon's
//! global pool; cheap calls (offers, similar items, customers) run on the tokio workers and
//! never touch it. The pool's threads run at a lower CPU priority (nice +[`HEAVY_NICE`]),
//! so when heavy calls fill the cores the kernel still hands the cheap calls the CPU at
//! once: admission control bounds how many heavy calls run, this bounds what they cost the
//! rest (measured with `doppel bench load --overload-heavy`).

/// Nice value of the heavy pool's threads (the kernel gives a nice-0 thread about 9× the
/// CPU of a nice-10 one when both want it).
pub const HEAVY_NICE: i32 = 10;

/// Builds rayon's global pool with lowered-priority threads. Call it before any heavy
/// work; a pool that already exists is left as it is (and said so).
pub fn lower_heavy_pool_priority() {
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("doppel-heavy-{i}"))
        .start_handler(|_| lower_this_thread())
        .build_global();
    if let Err(e) = built {
        tracing::warn!(error = %e, "heavy work pool already built: its priority is unchanged");
    }
}

#[cfg(target_os = "linux")]
fn lower_this_thread() {
    // SAFETY: on Linux a thread has its own nice value, and `setpriority(PRIO_PROCESS, 0,
    // n)` changes only the calling thread's; it takes no pointers. Raising the nice value
    // needs no privilege.
    let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HEAVY_NICE) };
    if done != 0 {
        tracing::warn!("could not lower the heavy pool's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread() {}
