//! `/proc/stat`: node_exporter's `cpu` collector (`node_cpu_seconds_total`) and its `stat`
//! collector (boot time, context switches, interrupts, forks, running/blocked processes).

use super::Error;
use crate::exporter::family::{Family, labels};

/// The per-CPU columns of `/proc/stat`, in file order, as node_exporter names them.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// The `guest` and `guest_nice` columns that follow, as node_exporter names them in
/// `node_cpu_guest_seconds_total`.
const GUEST_MODES: [&str; 2] = ["user", "nice"];

/// `node_cpu_seconds_total{cpu,mode}` and `node_cpu_guest_seconds_total{cpu,mode}` from
/// the `cpuN` lines, ticks divided by `user_hz`.
/// Columns missing on old kernels count as 0, as in node_exporter.
pub(crate) fn parse_cpu(text: &str, user_hz: f64) -> Result<Vec<Family>, Error> {
    let mut family = Family::counter("node_cpu_seconds", "Seconds the CPUs spent in each mode.");
    let mut guest = Family::counter(
        "node_cpu_guest_seconds",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    );
    for line in text.lines() {
        // The aggregate line is `cpu  …`; per-CPU lines are `cpu0 …`.
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let Some((id, columns)) = rest.split_once(' ') else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::parse(
                "stat",
                format!("unexpected cpu line {line:?}"),
            ));
        }
        let mut columns = columns.split_ascii_whitespace();
        for mode in MODES {
            let ticks = match columns.next() {
                Some(column) => column.parse::<u64>().map_err(|_| {
                    Error::parse("stat", format!("invalid {mode} ticks in {line:?}"))
                })?,
                None => 0,
            };
            family.push(
                labels([("cpu", id), ("mode", mode)]),
                ticks as f64 / user_hz,
            );
        }
        for mode in GUEST_MODES {
            let ticks = columns
                .next()
                .and_then(|c| c.parse::<u64>().ok())
                .unwrap_or(0);
            guest.push(
                labels([("cpu", id), ("mode", mode)]),
                ticks as f64 / user_hz,
            );
        }
    }
    if family.samples.is_empty() {
        return Err(Error::parse("stat", "no cpuN lines"));
    }
    Ok(vec![family, guest])
}

/// The single-number lines node_exporter's `stat` collector exports.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Stat {
    boot_time: Option<f64>,
    context_switches: Option<f64>,
    forks: Option<f64>,
    interrupts: Option<f64>,
    procs_blocked: Option<f64>,
    procs_running: Option<f64>,
}

fn scan_stat(text: &str) -> Result<Stat, Error> {
    let mut stat = Stat::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(' ') else {
            continue;
        };
        let slot = match key {
            "btime" => &mut stat.boot_time,
            "ctxt" => &mut stat.context_switches,
            "processes" => &mut stat.forks,
            // The first number of `intr` is the total; per-IRQ counts follow.
            "intr" => &mut stat.interrupts,
            "procs_blocked" => &mut stat.procs_blocked,
            "procs_running" => &mut stat.procs_running,
            _ => continue,
        };
        let value = rest
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Error::parse("stat", format!("invalid {key} line")))?;
        *slot = Some(value as f64);
    }
    Ok(stat)
}

/// `btime`: the boot time in Unix seconds, if the file has it.
pub(crate) fn boot_time(text: &str) -> Option<f64> {
    scan_stat(text).ok()?.boot_time
}

/// node_exporter's `stat` families from the same file.
pub(crate) fn parse_stat(text: &str) -> Result<Vec<Family>, Error> {
    let stat = scan_stat(text)?;
    let families = [
        (
            Family::gauge("node_boot_time_seconds", "Node boot time, in unixtime."),
            stat.boot_time,
        ),
        (
            Family::counter("node_context_switches", "Total number of context switches."),
            stat.context_switches,
        ),
        (
            Family::counter("node_forks", "Total number of forks."),
            stat.forks,
        ),
        (
            Family::counter("node_intr", "Total number of interrupts serviced."),
            stat.interrupts,
        ),
        (
            Family::gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
            ),
            stat.procs_blocked,
        ),
        (
            Family::gauge(
                "node_procs_running",
                "Number of processes in runnable state.",
            ),
            stat.procs_running,
        ),
    ];
    let out: Vec<Family> = families
        .into_iter()
        .filter_map(|(family, value)| Some(family.with(Vec::new(), value?)))
        .collect();
    if out.is_empty() {
        return Err(Error::parse("stat", "none of btime, ctxt, intr, processes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's /proc/stat (2 CPUs), `intr` shortened.
    const STAT: &str = "\
cpu  4430 0 3298 46515 568 0 83 25 0 0
cpu0 1661 0 1161 24567 46 0 12 8 0 0
cpu1 2768 0 2136 21948 522 0 70 16 0 0
intr 322722 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 12 0 0 0 0 55 43 0 17 1 90739 0 4030 3145 0 1632 2942 1 0
ctxt 867785
btime 1795313685
processes 6936
procs_running 1
procs_blocked 0
softirq 165908 0 11286 4 7301 90736 0 114 29411 0 27056
";

    fn value(families: &[Family], name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let family = families.iter().find(|f| f.name == name)?;
        family
            .samples
            .iter()
            .find(|s| {
                want.iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn cpu_seconds_per_cpu_and_mode() {
        let families = parse_cpu("cpu0 1 2 3 4 5 6 7 8 150 7\n", 100.0).unwrap();
        assert_eq!(
            value(
                &families,
                "node_cpu_guest_seconds",
                &[("cpu", "0"), ("mode", "user")]
            ),
            Some(1.5)
        );
        assert_eq!(
            value(
                &families,
                "node_cpu_guest_seconds",
                &[("cpu", "0"), ("mode", "nice")]
            ),
            Some(0.07)
        );
        let families = parse_cpu(STAT, 100.0).unwrap();
        assert_eq!(families.len(), 2);
        assert_eq!(families[1].samples.len(), 2 * 2);
        assert_eq!(families[0].samples.len(), 2 * 8);
        let get = |cpu, mode| {
            value(
                &families,
                "node_cpu_seconds",
                &[("cpu", cpu), ("mode", mode)],
            )
        };
        // node_exporter printed exactly these for the same ticks.
        assert_eq!(get("0", "user"), Some(16.61));
        assert_eq!(get("0", "idle"), Some(245.67));
        assert_eq!(get("1", "iowait"), Some(5.22));
        assert_eq!(get("1", "steal"), Some(0.16));
        assert_eq!(get("1", "softirq"), Some(0.7));
        // The aggregate `cpu` line is not a CPU.
        assert!(
            families[0]
                .samples
                .iter()
                .all(|s| s.labels[0].1 == "0" || s.labels[0].1 == "1")
        );
        assert_eq!(families[0].sample_name(), "node_cpu_seconds_total");
    }

    #[test]
    fn old_kernel_short_cpu_lines_count_missing_modes_as_zero() {
        let families = parse_cpu("cpu 1 2 3 4\ncpu0 100 200 300 400\n", 100.0).unwrap();
        let get = |mode| {
            value(
                &families,
                "node_cpu_seconds",
                &[("cpu", "0"), ("mode", mode)],
            )
        };
        assert_eq!(get("system"), Some(3.0));
        assert_eq!(get("idle"), Some(4.0));
        assert_eq!(get("steal"), Some(0.0));
    }

    #[test]
    fn malformed_cpu_lines_fail() {
        assert!(parse_cpu("cpu0 1 x 3\n", 100.0).is_err());
        assert!(parse_cpu("cpuX 1 2 3\n", 100.0).is_err());
        assert!(parse_cpu("", 100.0).is_err());
        assert!(parse_cpu("intr 1 2\n", 100.0).is_err());
    }

    #[test]
    fn stat_families() {
        let families = parse_stat(STAT).unwrap();
        let names: Vec<_> = families
            .iter()
            .map(|f| f.sample_name().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "node_boot_time_seconds",
                "node_context_switches_total",
                "node_forks_total",
                "node_intr_total",
                "node_procs_blocked",
                "node_procs_running",
            ]
        );
        assert_eq!(
            value(&families, "node_boot_time_seconds", &[]),
            Some(1_795_313_685.0)
        );
        assert_eq!(
            value(&families, "node_context_switches", &[]),
            Some(867_785.0)
        );
        assert_eq!(value(&families, "node_forks", &[]), Some(6936.0));
        assert_eq!(value(&families, "node_intr", &[]), Some(322_722.0));
        assert_eq!(value(&families, "node_procs_running", &[]), Some(1.0));
        assert_eq!(value(&families, "node_procs_blocked", &[]), Some(0.0));
        assert!(families.iter().all(|f| f.samples[0].labels.is_empty()));
        assert_eq!(boot_time(STAT), Some(1_795_313_685.0));
    }

    #[test]
    fn stat_errors() {
        assert!(parse_stat("btime x\n").is_err());
        assert!(parse_stat("cpu0 1 2 3\n").is_err());
        assert_eq!(boot_time("ctxt 5\n"), None);
        // Missing lines are left out rather than reported as 0.
        assert_eq!(parse_stat("btime 7\n").unwrap().len(), 1);
    }
}
