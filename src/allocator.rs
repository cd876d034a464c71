//! The global allocator: mimalloc (as in DataFusion's own CLI), and its setting for batch runs.

use std::ffi::c_long;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`, the version libmimalloc-sys builds by
/// default (pinned in Cargo.lock).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its default there, in milliseconds (`options.c`).
const DEFAULT_PURGE_DELAY: c_long = 1000;

/// For batch commands (import, generate, check, report): memory freed is kept for reuse rather than given
/// back to the OS a second later. Their working set is bounded and reused at once, so giving it back
/// only makes the next allocation fault in fresh zeroed pages. Measured on `tracegap import` of a
/// 514 MB dump: 15k page faults instead of 37k, system time 0.4 s instead of 0.6 to 2.1 s, the
/// same peak RSS. A long-running `serve` keeps the default.
pub fn keep_freed_memory() {
    // SAFETY: plain option calls of mimalloc, valid at any time. The option is changed only when
    // it holds the default of `mi_option_purge_delay`: another mimalloc numbering its options
    // differently, or a MIMALLOC_PURGE_DELAY set by the user, leaves it alone.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}
