//! Gives memory freed by a build back to the operating system.
//!
//! A version load reads every vector as one small allocation per row and frees them after
//! the build; glibc keeps such freed chunks in its arenas, so a node that imported 200k
//! customers sat at ~5× its index size until restarted (`doppel bench scale`). Trimming once
//! after each build returns them.

/// Returns freed heap memory to the OS (glibc's `malloc_trim`; nothing elsewhere).
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas and takes their locks; it has no
    // preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}
