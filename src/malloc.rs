//! glibc's malloc, tuned for a sidecar whose threads mostly wait:
//!
//! - **One arena** (`MALLOC_ARENA_MAX=1`). By default every thread that allocates gets an
//!   arena of its own (up to eight per core), and the pages each one touched stay
//!   resident while the thread idles.
//! - **Large blocks from `mmap`, and a trimmed heap** (`MALLOC_MMAP_THRESHOLD_=32768`,
//!   `MALLOC_TRIM_THRESHOLD_=65536`). By default the mmap threshold rises to the largest
//!   block freed so far, so the transient buffers of an encode or a compression (a
//!   gzip compressor's few hundred KB) end up in the heap and keep it grown; a fixed
//!   threshold hands them back to the kernel when freed.
//!
//! Host metrics only, two cores, Prometheus-style gzip scrapes: 10.6 → 9.7 MB RSS after
//! scrapes (`bench/scale.sh`), with no measurable cost in throughput (`bench/host.sh`,
//! `bench/ingest.sh`, `bench/scale.sh`: same-run ratios within the machine's noise).
//!
//! glibc reads these once, from the environment, when malloc initializes — before
//! `main` — and changing them from inside takes `unsafe` (`mallopt`, or `set_var`
//! before the first allocation), which this crate forbids. So the server re-executes
//! itself, once, with them set: same process id, arguments and descriptors, about a
//! millisecond more at start. An operator who set any malloc tunable (`MALLOC_*`, or
//! `GLIBC_TUNABLES`) gets exactly their own settings. Builds on other C libraries (the
//! static musl image) have no arenas and skip this.

/// The settings, as glibc's environment variables.
const SETTINGS: [(&str, &str); 3] = [
    ("MALLOC_ARENA_MAX", "1"),
    ("MALLOC_MMAP_THRESHOLD_", "32768"),
    ("MALLOC_TRIM_THRESHOLD_", "65536"),
];

/// Whether the environment already tunes malloc (the operator's choice, or this
/// process after its re-exec).
fn tuned(vars: impl Iterator<Item = std::ffi::OsString>) -> bool {
    vars.filter_map(|name| name.into_string().ok())
        .any(|name| name.starts_with("MALLOC_") || name == "GLIBC_TUNABLES")
}

/// Re-executes this process with [`SETTINGS`] unless malloc is tuned already. Returns
/// only if it did not (tuned, not glibc, or the exec failed).
pub fn tune_for_idle() {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || tuned(std::env::vars_os().map(|(name, _)| name))
    {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_default();
        // /proc/self/exe is this binary even if its file was replaced since it started.
        let error = std::process::Command::new("/proc/self/exe")
            .arg0(argv0)
            .args(args)
            .envs(SETTINGS)
            .exec();
        // exec returns only when it failed: run on with glibc's defaults.
        drop(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_malloc_tunable_of_the_operator_is_left_alone() {
        let names = |list: &[&str]| {
            list.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(!tuned(names(&["PATH", "HOME", "MALLOCATOR"])));
        assert!(tuned(names(&["PATH", "MALLOC_ARENA_MAX"])));
        assert!(tuned(names(&["MALLOC_TOP_PAD_"])));
        assert!(tuned(names(&["GLIBC_TUNABLES"])));
    }
}
