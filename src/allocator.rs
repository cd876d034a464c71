//! The global allocator: mimalloc (as in DataFusion's own CLI), and its setting for batch runs.

use std::ffi::c_long;
use std::sync::OnceLock;

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

/// For the analysis commands (check, report, bench check): no transparent huge pages for this
/// process. mimalloc asks for them (`madvise(MADV_HUGEPAGE)`) on its arenas, and a fresh 2 MiB
/// page is faulted in and zeroed whole, used in full or not. On 10M spans at 8 GiB (four
/// interleaved pairs of `tracegap bench check`, docs/benchmarks.md, session 16): system time 5.9
/// to 6.3 s without them against 9.3 to 16.5 s with them, peak RSS 0.5 to 0.9 GiB lower, views
/// and checks 0 to 1.4 s faster.
pub fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    disable_transparent_huge_pages();
}

#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` only sets a flag of this process's memory
    // map, read at page-fault time; it fails harmlessly on kernels without it.
    let result = unsafe {
        libc::prctl(
            libc::PR_SET_THP_DISABLE,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay enabled");
    }
}

/// For an analysis whose spans do not fit in memory (the checks read the files): memory freed is
/// given back to the OS after 100 ms. Such a run is bound by its memory limit rather than its
/// speed, and memory kept for reuse counts in its RSS. On 10M spans under 1 GiB (interleaved runs
/// of `tracegap bench check`, docs/benchmarks.md, session 17): peak RSS 2.68 GiB kept, 1.99 GiB
/// given back after 100 ms, 1.74 GiB at once; views and checks 27.3 s, 31.7 s and 37.2 s. When the
/// spans fit, memory stays kept: under 8 GiB, giving it back after 100 ms cost 2 s of 13.2 s.
/// The analysis calls it (`AnalysisOptions::when_spans_do_not_fit`) once it knows, in `check`,
/// `report`, `serve` and `bench check` alike.
pub fn return_freed_memory_when_memory_bound() {
    return_freed_memory_after(std::time::Duration::from_millis(100));
}

/// Whether the user chose the purge delay (`MIMALLOC_PURGE_DELAY`), read once, before any change.
static PURGE_DELAY_CHOSEN_BY_USER: OnceLock<bool> = OnceLock::new();

fn set_purge_delay(milliseconds: c_long) {
    // SAFETY: plain option calls of mimalloc, valid at any time. The option is changed only when
    // it held the default of `mi_option_purge_delay` at the first call: another mimalloc numbering
    // its options differently, or a MIMALLOC_PURGE_DELAY set by the user, leaves it alone.
    unsafe {
        let chosen_by_user = *PURGE_DELAY_CHOSEN_BY_USER
            .get_or_init(|| libmimalloc_sys::mi_option_get(PURGE_DELAY) != DEFAULT_PURGE_DELAY);
        if !chosen_by_user {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, milliseconds);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn analysis_commands_run_without_transparent_huge_pages() {
        // (Not asserted 0 before: the flag is inherited, and the test runner may have it set.)
        no_transparent_huge_pages();
        // SAFETY: reads this process's flag.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1, "PR_GET_THP_DISABLE after no_transparent_huge_pages");
    }

    #[test]
    fn a_memory_bound_analysis_gives_freed_memory_back_after_keeping_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            panic!("MIMALLOC_PURGE_DELAY is set: the user's choice is never changed, unset it to run this test");
        }
        // SAFETY: reads a mimalloc option.
        let purge_delay = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
        // The second change applies too: `check` first keeps memory, then learns the spans do not fit.
        return_freed_memory_when_memory_bound();
        assert_eq!(purge_delay(), 100);
    }
}
