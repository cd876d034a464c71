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
/// same peak RSS. A long-running `serve` uses [`return_freed_memory_after`] instead.
pub fn keep_freed_memory() {
    set_purge_delay(-1);
}

/// For `serve`: memory freed is given back to the OS only after it stayed unused this long. While
/// spans stream in, the memory of one flush is reused by the next within seconds; giving it back
/// after mimalloc's default second made the kernel zero fresh pages again and again (`tracegap
/// bench ingest`, gRPC: server kernel time 0.30 cores with the default, 0.16 with 10 s). When
/// ingest stops, the memory still goes back.
pub fn return_freed_memory_after(delay: std::time::Duration) {
    set_purge_delay(c_long::try_from(delay.as_millis()).unwrap_or(c_long::MAX));
}

fn set_purge_delay(milliseconds: c_long) {
    // SAFETY: plain option calls of mimalloc, valid at any time. The option is changed only when
    // it holds the default of `mi_option_purge_delay`: another mimalloc numbering its options
    // differently, or a MIMALLOC_PURGE_DELAY set by the user, leaves it alone.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, milliseconds);
        }
    }
}
