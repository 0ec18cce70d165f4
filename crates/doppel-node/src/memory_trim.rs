//! Gives memory freed by a build back to the operating system.
//!
//! A version load reads every vector as one small allocation per row and frees them after
//! the build; glibc keeps such freed chunks in its arenas, so a node that imported 200k
//! customers sat at ~5× its index size until restarted (`doppel bench scale`). Trimming once
//! after each build returns them.
//!
//! The `doppel` binary allocates with mimalloc, which returns free pages on its own after a
//! short delay; `mi_collect` frees what the calling thread's heap holds free and purges
//! free pages now. glibc is still trimmed, for what other code (and a library user's
//! binary) allocates there.

/// Returns freed heap memory to the OS (mimalloc's `mi_collect`, and glibc's `malloc_trim`
/// on glibc).
pub(crate) fn release_freed_memory() {
    // SAFETY: mi_collect frees only memory mimalloc itself holds free; it has no
    // preconditions (a no-op when nothing was allocated through mimalloc).
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas and takes their locks; it has no
    // preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}
