//! The binary's allocator: mimalloc, returning free pages to the OS at once.

/// mimalloc instead of glibc's malloc: serving allocates and frees many small strings on
/// several threads (offers, recorded impressions), and glibc's arenas spent about a sixth
/// of the CPU of `bench load --caps` on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e` (libmimalloc-sys does not
/// export it as a constant).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// The purge delay mimalloc (v3, as libmimalloc-sys builds it) starts with, ms.
const MI_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1_000;

/// Free pages go back to the OS at once instead of after mimalloc's default delay: with
/// the delay, a 200k-customer node sat at ~35 % more RSS after a restart than with glibc
/// (`doppel bench scale`); at once, at or below glibc, at no measured cost to serving.
/// Left alone when `MIMALLOC_PURGE_DELAY` is set, or when the option does not read as the
/// default (a mimalloc whose option layout differs).
pub(crate) fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mimalloc's options are not thread-safe; the caller runs this first in `main`, before any
    // other thread exists.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}
