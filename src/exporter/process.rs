//! The standard client-library process metrics (`process_*`) for lookout itself: from
//! `/proc/self` on Linux, from sysinfo elsewhere.

use std::path::Path;
use std::sync::OnceLock;

use super::family::Family;
use super::host::user_hz;

/// Resource usage of the current process as the Prometheus client libraries export it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Usage {
    cpu_seconds: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    virtual_bytes: Option<f64>,
    virtual_max_bytes: Option<f64>,
    resident_bytes: Option<f64>,
    start_time_seconds: Option<f64>,
}

/// The `process_*` families for the current process; whatever cannot be read is left out.
pub fn collect() -> Vec<Family> {
    let usage = procfs(Path::new("/proc")).unwrap_or_else(portable);
    families(&usage)
}

fn families(usage: &Usage) -> Vec<Family> {
    [
        (
            Family::counter(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
            ),
            usage.cpu_seconds,
        ),
        (
            Family::gauge("process_open_fds", "Number of open file descriptors."),
            usage.open_fds,
        ),
        (
            Family::gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            usage.max_fds,
        ),
        (
            Family::gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            usage.virtual_bytes,
        ),
        (
            Family::gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
            ),
            usage.virtual_max_bytes,
        ),
        (
            Family::gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            usage.resident_bytes,
        ),
        (
            Family::gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
            usage.start_time_seconds,
        ),
    ]
    .into_iter()
    .filter_map(|(family, value)| Some(family.with(Vec::new(), value?)))
    .collect()
}

/// The fields of `/proc/<pid>/stat` the metrics need, in the units of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PidStat {
    utime_ticks: u64,
    stime_ticks: u64,
    start_ticks: u64,
    vsize_bytes: u64,
    rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name is parenthesised and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let (_, rest) = text.rsplit_once(')')?;
    // rest: state(3) ppid(4) … utime(14) stime(15) … starttime(22) vsize(23) rss(24)
    let mut fields = rest.split_ascii_whitespace();
    let mut field = |skip: usize| -> Option<u64> { fields.nth(skip)?.parse().ok() };
    let utime_ticks = field(11)?;
    let stime_ticks = field(0)?;
    let start_ticks = field(6)?;
    let vsize_bytes = field(0)?;
    let rss_pages = field(0)?;
    Some(PidStat {
        utime_ticks,
        stime_ticks,
        start_ticks,
        vsize_bytes,
        rss_pages,
    })
}

/// The soft limit of one `/proc/<pid>/limits` row; `unlimited` is `u64::MAX` like the Go
/// client reports it.
fn soft_limit(limits: &str, row: &str) -> Option<f64> {
    limits.lines().find_map(|line| {
        let rest = line.strip_prefix(row)?;
        let soft = rest.split_ascii_whitespace().next()?;
        if soft == "unlimited" {
            Some(u64::MAX as f64)
        } else {
            soft.parse::<u64>().ok().map(|v| v as f64)
        }
    })
}

/// Boot time from `/proc/stat`, read once: it does not change while we run.
fn boot_time(proc_root: &Path) -> Option<f64> {
    static BOOT_TIME: OnceLock<Option<f64>> = OnceLock::new();
    *BOOT_TIME.get_or_init(|| {
        let text = std::fs::read_to_string(proc_root.join("stat")).ok()?;
        super::host::boot_time(&text)
    })
}

/// Everything from `/proc/self`; `None` where that does not exist.
fn procfs(proc_root: &Path) -> Option<Usage> {
    let text = std::fs::read_to_string(proc_root.join("self/stat")).ok()?;
    let stat = parse_pid_stat(&text)?;
    let limits = std::fs::read_to_string(proc_root.join("self/limits")).unwrap_or_default();
    let open_fds = std::fs::read_dir(proc_root.join("self/fd"))
        .ok()
        .map(|dir| dir.count() as f64);
    Some(usage_from_proc(
        &stat,
        &limits,
        open_fds,
        boot_time(proc_root),
        user_hz(),
        page_size(),
    ))
}

fn usage_from_proc(
    stat: &PidStat,
    limits: &str,
    open_fds: Option<f64>,
    boot_time: Option<f64>,
    user_hz: f64,
    page_size: f64,
) -> Usage {
    Usage {
        cpu_seconds: Some((stat.utime_ticks + stat.stime_ticks) as f64 / user_hz),
        open_fds,
        max_fds: soft_limit(limits, "Max open files"),
        virtual_bytes: Some(stat.vsize_bytes as f64),
        virtual_max_bytes: soft_limit(limits, "Max address space"),
        resident_bytes: Some(stat.rss_pages as f64 * page_size),
        start_time_seconds: boot_time.map(|boot| stat.start_ticks as f64 / user_hz + boot),
    }
}

fn page_size() -> f64 {
    #[cfg(unix)]
    let size = rustix::param::page_size();
    #[cfg(not(unix))]
    let size = 4096_usize;
    size as f64
}

/// What sysinfo knows about the current process.
fn portable() -> Usage {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

    let (Ok(pid), Ok(mut system)) = (sysinfo::get_current_pid(), System::new()) else {
        return Usage::default();
    };
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_cpu().with_memory(),
    );
    let Some(process) = system.process(pid) else {
        return Usage::default();
    };
    Usage {
        cpu_seconds: Some(process.accumulated_cpu_time() as f64 / 1000.0),
        open_fds: process.open_files().map(|n| n as f64),
        max_fds: process.open_files_limit().map(|n| n as f64),
        virtual_bytes: Some(process.virtual_memory() as f64),
        virtual_max_bytes: None,
        resident_bytes: Some(process.memory() as f64),
        start_time_seconds: Some(process.start_time() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A /proc/<pid>/stat whose command name has spaces and parentheses.
    const STAT: &str = "7612 (we (ird) name) R 7608 7608 6525 0 -1 4194304 99 0 0 0 \
        250 70 0 0 20 0 1 0 31645 3133440 413 18446744073709551615 94589388316672 \
        94589388336553 140733864094848 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94589388352560 \
        94589388354176 94590193188864 140733864098528 140733864098548 140733864098548 \
        140733864099819 0\n";

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            20000                524288               files     
Max address space         unlimited            unlimited            bytes     
";

    #[test]
    fn pid_stat_fields() {
        let stat = parse_pid_stat(STAT).unwrap();
        assert_eq!(
            stat,
            PidStat {
                utime_ticks: 250,
                stime_ticks: 70,
                start_ticks: 31645,
                vsize_bytes: 3_133_440,
                rss_pages: 413,
            }
        );
        assert_eq!(parse_pid_stat("1 (x) R 1 2"), None);
        assert_eq!(parse_pid_stat("no parenthesis"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(soft_limit(LIMITS, "Max open files"), Some(20000.0));
        assert_eq!(
            soft_limit(LIMITS, "Max address space"),
            Some(1.8446744073709552e19)
        );
        assert_eq!(soft_limit(LIMITS, "Max nice priority"), None);
    }

    #[test]
    fn usage_and_families() {
        let stat = parse_pid_stat(STAT).unwrap();
        let usage = usage_from_proc(
            &stat,
            LIMITS,
            Some(11.0),
            Some(1_795_313_685.0),
            100.0,
            4096.0,
        );
        assert_eq!(usage.cpu_seconds, Some(3.2));
        assert_eq!(usage.resident_bytes, Some(413.0 * 4096.0));
        assert_eq!(usage.start_time_seconds, Some(1_795_313_685.0 + 316.45));
        let names: Vec<String> = families(&usage)
            .iter()
            .map(|f| f.sample_name().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
                "process_virtual_memory_bytes",
                "process_virtual_memory_max_bytes",
                "process_resident_memory_bytes",
                "process_start_time_seconds",
            ]
        );
        // Unknown values are left out, not reported as 0.
        let partial = families(&Usage {
            cpu_seconds: Some(1.0),
            ..Usage::default()
        });
        assert_eq!(partial.len(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process() {
        let usage = procfs(Path::new("/proc")).unwrap();
        assert!(usage.open_fds.unwrap() >= 3.0);
        assert!(usage.max_fds.unwrap() >= 64.0);
        assert!(usage.resident_bytes.unwrap() > 1_000_000.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = usage.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
        assert_eq!(collect().len(), 7);
    }

    #[test]
    fn portable_fallback() {
        let usage = portable();
        assert!(usage.resident_bytes.unwrap() > 0.0);
        assert!(usage.start_time_seconds.unwrap() > 1.0e9);
    }
}
