//! Mounted filesystems: node_exporter's `filesystem` collector — bytes, inodes, read-only
//! and error flags per `device,fstype,mountpoint`, with every `statfs` bounded by a timeout.
//!
//! Stuck mounts follow node_exporter: a `statfs` that has not returned after
//! `mount_timeout` marks its mount point stuck; a stuck mount is reported with
//! `node_filesystem_device_error 1` and no other sample, and is not statted again until
//! the pending call returns. Unlike node_exporter the collection itself never waits longer
//! than the timeout: the calls run on helper threads that the collection abandons.
//!
//! With `host.rootfs` set, mount points are reported as the host sees them (the prefix
//! stripped) and `statfs` goes through the prefix, like node_exporter's `--path.rootfs`.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use regex::Regex;

use crate::exporter::family::{Family, Labels, labels};

/// At most this many `statfs` calls run at once (node_exporter's default stat workers).
const STAT_WORKERS: usize = 4;

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) device: String,
    pub(crate) mount_point: String,
    pub(crate) fs_type: String,
    pub(crate) read_only: bool,
}

/// Parses `/proc/<pid>/mounts`; malformed lines are skipped. Octal escapes (`\040` for a
/// space…) in the mount point are decoded.
pub(crate) fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (Some(device), Some(mount_point), Some(fs_type), Some(options)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            Some(Mount {
                device: device.to_owned(),
                mount_point: unescape_octal(mount_point),
                fs_type: fs_type.to_owned(),
                read_only: options.split(',').any(|option| option == "ro"),
            })
        })
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape_octal(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match bytes.get(i + 1..i + 4) {
            Some(&[a, b, c]) if byte == b'\\' && is_octal_byte([a, b, c]) => {
                Some(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'))
            }
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 4;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

impl AsRef<Mount> for Mount {
    fn as_ref(&self) -> &Mount {
        self
    }
}

/// `mount_point` without the `root` prefix (`/host/data` → `/data`, `/host` → `/`);
/// `None` when `root` is `/` or does not contain the mount point.
pub(crate) fn strip_root(root: &str, mount_point: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return None;
    }
    match mount_point.strip_prefix(root)? {
        "" => Some("/".to_owned()),
        rest if rest.starts_with('/') => Some(rest.to_owned()),
        _ => None,
    }
}

/// The path to `statfs` for a mount point the host reports: under `root` unless `/`.
fn stat_path(root: &str, mount_point: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        mount_point.to_owned()
    } else {
        format!("{root}{mount_point}")
    }
}

/// Three octal digits that fit a byte (`\000` to `\377`).
fn is_octal_byte(digits: [u8; 3]) -> bool {
    digits[0] <= b'3' && digits.iter().all(|d| (b'0'..=b'7').contains(d))
}

/// Drops excluded mounts and repeated `device,fstype,mountpoint` label sets (first wins).
pub(crate) fn select<T: AsRef<Mount>>(
    items: Vec<T>,
    mount_points: &Regex,
    fs_types: &Regex,
) -> Vec<T> {
    let mut selected: Vec<T> = Vec::with_capacity(items.len().min(16));
    for item in items {
        let mount = item.as_ref();
        if mount_points.is_match(&mount.mount_point) || fs_types.is_match(&mount.fs_type) {
            continue;
        }
        let duplicate = selected.iter().any(|seen| {
            let seen = seen.as_ref();
            seen.mount_point == mount.mount_point
                && seen.device == mount.device
                && seen.fs_type == mount.fs_type
        });
        if !duplicate {
            selected.push(item);
        }
    }
    selected
}

/// What `statfs` says about a mounted filesystem, converted as node_exporter does
/// (blocks × `f_bsize`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FsUsage {
    pub(crate) size: f64,
    pub(crate) free: f64,
    pub(crate) avail: f64,
    pub(crate) files: f64,
    pub(crate) files_free: f64,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn statfs(path: &str) -> io::Result<FsUsage> {
    let stat = rustix::fs::statfs(path)?;
    let block = stat.f_bsize as f64;
    Ok(FsUsage {
        size: stat.f_blocks as f64 * block,
        free: stat.f_bfree as f64 * block,
        avail: stat.f_bavail as f64 * block,
        files: stat.f_files as f64,
        files_free: stat.f_ffree as f64,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn statfs(_path: &str) -> io::Result<FsUsage> {
    Err(io::ErrorKind::Unsupported.into())
}

type StatFn = Arc<dyn Fn(&str) -> io::Result<FsUsage> + Send + Sync>;
type StuckSet = Arc<Mutex<HashSet<String>>>;

fn lock(stuck: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    stuck.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `statfs` on helper threads with a timeout and remembers stuck mount points.
pub(crate) struct Statter {
    stuck: StuckSet,
    statfs: StatFn,
    timeout: Duration,
    /// `host.rootfs`, through which mount points are statted.
    root: Arc<str>,
}

impl std::fmt::Debug for Statter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statter")
            .field("stuck", &self.stuck)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How statting one mount ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Usage(FsUsage),
    /// The call failed, timed out, is still pending from an earlier collection, or could
    /// not be started.
    DeviceError,
}

/// A mount's progress within one collection.
#[derive(Debug)]
enum State {
    Queued,
    Running(Instant),
    Finished(Outcome),
}

/// What a helper thread reports.
enum Event {
    Started(usize),
    Finished(usize, io::Result<FsUsage>),
}

/// The work shared by one collection's helper threads.
struct Job {
    mounts: Arc<[Mount]>,
    /// Indices into `mounts` still to stat, taken in order through `next`.
    queue: Vec<usize>,
    next: AtomicUsize,
    events: Sender<Event>,
    stuck: StuckSet,
    statfs: StatFn,
    root: Arc<str>,
}

impl Job {
    /// A helper thread: stats queued mounts until none is left. A call that returns after
    /// the collection gave up on it un-marks its mount point (node_exporter's recovery).
    fn work(&self) {
        loop {
            let slot = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(mount) = self
                .queue
                .get(slot)
                .and_then(|&i| self.mounts.get(i).map(|m| (i, m)))
            else {
                return;
            };
            let (index, mount) = mount;
            if self.events.send(Event::Started(index)).is_err() {
                return;
            }
            let result = (self.statfs)(&stat_path(&self.root, &mount.mount_point));
            // Reporting and un-marking under the lock lets the collection decide
            // atomically between "answered in time" and "stuck".
            let mut stuck = lock(&self.stuck);
            let _ = self.events.send(Event::Finished(index, result));
            stuck.remove(&mount.mount_point);
        }
    }
}

impl Statter {
    pub(crate) fn new(timeout: Duration, root: &std::path::Path) -> Self {
        let mut statter = Self::with_statfs(timeout, Arc::new(statfs));
        statter.root = root.to_string_lossy().into();
        statter
    }

    fn with_statfs(timeout: Duration, statfs: StatFn) -> Self {
        Self {
            stuck: Arc::default(),
            statfs,
            timeout,
            root: "/".into(),
        }
    }

    /// The filesystem families for already selected mounts.
    pub(crate) fn collect(&self, mounts: Vec<Mount>) -> Vec<Family> {
        let mounts: Arc<[Mount]> = mounts.into();
        let outcomes = self.stat_all(&mounts);
        families(&mounts, &outcomes)
    }

    fn stat_all(&self, mounts: &Arc<[Mount]>) -> Vec<Outcome> {
        let mut states: Vec<State> = Vec::with_capacity(mounts.len());
        let mut queue = Vec::with_capacity(mounts.len());
        {
            let stuck = lock(&self.stuck);
            for (index, mount) in mounts.iter().enumerate() {
                if stuck.contains(&mount.mount_point) {
                    states.push(State::Finished(Outcome::DeviceError));
                } else {
                    states.push(State::Queued);
                    queue.push(index);
                }
            }
        }
        if queue.is_empty() {
            return finish(states);
        }

        let (events, receiver) = mpsc::channel();
        let job = Arc::new(Job {
            mounts: Arc::clone(mounts),
            queue,
            next: AtomicUsize::new(0),
            events,
            stuck: Arc::clone(&self.stuck),
            statfs: Arc::clone(&self.statfs),
            root: Arc::clone(&self.root),
        });
        let workers = job.queue.len().min(STAT_WORKERS);
        let spawned = (0..workers).filter(|_| spawn_worker(&job)).count();
        if spawned == 0 {
            return finish(states);
        }
        self.wait(&job, states, &receiver)
    }

    /// Applies the workers' events until every mount has answered or timed out; a worker
    /// lost to a stuck mount is replaced so that the mounts queued behind it are statted.
    fn wait(
        &self,
        job: &Arc<Job>,
        mut states: Vec<State>,
        events: &mpsc::Receiver<Event>,
    ) -> Vec<Outcome> {
        loop {
            let mut running = false;
            let mut queued = false;
            let mut deadline: Option<Instant> = None;
            for state in &states {
                match state {
                    State::Queued => queued = true,
                    State::Running(start) => {
                        running = true;
                        let due = *start + self.timeout;
                        deadline = Some(deadline.map_or(due, |d| d.min(due)));
                    }
                    State::Finished(_) => {}
                }
            }
            if !running && !queued {
                return finish(states);
            }
            let wait = deadline.map_or(self.timeout, |d| {
                d.saturating_duration_since(Instant::now())
            });
            match events.recv_timeout(wait) {
                Ok(event) => apply(&mut states, event, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {
                    let lost = self.expire(&job.mounts, &mut states, events);
                    let queued = states.iter().filter(|s| matches!(s, State::Queued)).count();
                    if !running && queued > 0 && lost == 0 {
                        // Nothing started for a whole timeout: no worker is alive.
                        return finish(states);
                    }
                    for _ in 0..lost.min(queued) {
                        spawn_worker(job);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return finish(states),
            }
        }
    }

    /// Marks mounts whose call outlived the timeout as stuck; returns how many.
    fn expire(
        &self,
        mounts: &[Mount],
        states: &mut [State],
        events: &mpsc::Receiver<Event>,
    ) -> usize {
        let mut stuck = lock(&self.stuck);
        // Under the lock no worker can report, so whatever is not in the channel now is
        // still pending and its worker will un-mark it when it returns.
        while let Ok(event) = events.try_recv() {
            apply(states, event, Instant::now());
        }
        let now = Instant::now();
        let mut lost = 0;
        for (index, state) in states.iter_mut().enumerate() {
            let overdue = match state {
                State::Running(start) => now.saturating_duration_since(*start) >= self.timeout,
                State::Queued | State::Finished(_) => false,
            };
            if overdue {
                if let Some(mount) = mounts.get(index) {
                    stuck.insert(mount.mount_point.clone());
                }
                *state = State::Finished(Outcome::DeviceError);
                lost += 1;
            }
        }
        lost
    }
}

fn apply(states: &mut [State], event: Event, now: Instant) {
    match event {
        Event::Started(index) => {
            if let Some(state @ State::Queued) = states.get_mut(index) {
                *state = State::Running(now);
            }
        }
        Event::Finished(index, result) => {
            if let Some(state @ (State::Queued | State::Running(_))) = states.get_mut(index) {
                *state = State::Finished(match result {
                    Ok(usage) => Outcome::Usage(usage),
                    Err(_) => Outcome::DeviceError,
                });
            }
        }
    }
}

fn spawn_worker(job: &Arc<Job>) -> bool {
    let job = Arc::clone(job);
    std::thread::Builder::new()
        .name("lookout-statfs".into())
        .stack_size(64 * 1024)
        .spawn(move || job.work())
        .is_ok()
}

/// Unfinished mounts count as device errors.
fn finish(states: Vec<State>) -> Vec<Outcome> {
    states
        .into_iter()
        .map(|state| match state {
            State::Finished(outcome) => outcome,
            State::Queued | State::Running(_) => Outcome::DeviceError,
        })
        .collect()
}

fn mount_labels(mount: &Mount) -> Labels {
    labels([
        ("device", &mount.device),
        ("fstype", &mount.fs_type),
        ("mountpoint", &mount.mount_point),
    ])
}

/// node_exporter's families: `device_error` for every mount, the rest only for mounts
/// that answered.
fn families(mounts: &[Mount], outcomes: &[Outcome]) -> Vec<Family> {
    let mut avail = Family::gauge(
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
    );
    let mut device_error = Family::gauge(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
    );
    let mut files = Family::gauge("node_filesystem_files", "Filesystem total file nodes.");
    let mut files_free = Family::gauge(
        "node_filesystem_files_free",
        "Filesystem total free file nodes.",
    );
    let mut free = Family::gauge(
        "node_filesystem_free_bytes",
        "Filesystem free space in bytes.",
    );
    let mut readonly = Family::gauge("node_filesystem_readonly", "Filesystem read-only status.");
    let mut size = Family::gauge("node_filesystem_size_bytes", "Filesystem size in bytes.");
    for (mount, outcome) in mounts.iter().zip(outcomes) {
        let labels = mount_labels(mount);
        match outcome {
            Outcome::DeviceError => device_error.push(labels, 1.0),
            Outcome::Usage(usage) => {
                avail.push(labels.clone(), usage.avail);
                device_error.push(labels.clone(), 0.0);
                files.push(labels.clone(), usage.files);
                files_free.push(labels.clone(), usage.files_free);
                free.push(labels.clone(), usage.free);
                readonly.push(labels.clone(), if mount.read_only { 1.0 } else { 0.0 });
                size.push(labels, usage.size);
            }
        }
    }
    vec![avail, device_error, files, files_free, free, readonly, size]
}

#[cfg(test)]
mod tests {
    use std::sync::Condvar;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::config::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE};

    /// This machine's /proc/1/mounts plus escaped and read-only entries.
    const MOUNTS: &str = r"proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334460k,nr_inodes=3083615,mode=755 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24684084k 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
model_tools_unavailable /mnt/sandboxing/model_tools_env/v1/python tmpfs ro,nosuid,nodev,relatime,size=4k,mode=755 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
/dev/vda / ext4 rw,relatime 0 0
/dev/vdb1 /srv/my\040data ext4 ro,noatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
tmpfs /run tmpfs rw,nosuid,nodev 0 0
tmpfs /tmp tmpfs rw 0 0
truncated line
";

    fn defaults() -> (Regex, Regex) {
        (
            Regex::new(DEFAULT_MOUNT_POINTS_EXCLUDE).unwrap(),
            Regex::new(DEFAULT_FS_TYPES_EXCLUDE).unwrap(),
        )
    }

    fn usage(size: f64) -> FsUsage {
        FsUsage {
            size,
            free: size / 2.0,
            avail: size / 4.0,
            files: 100.0,
            files_free: 50.0,
        }
    }

    fn mount(mount_point: &str) -> Mount {
        Mount {
            device: format!("dev{mount_point}"),
            mount_point: mount_point.to_owned(),
            fs_type: "nfs4".to_owned(),
            read_only: false,
        }
    }

    fn sample(families: &[Family], name: &str, mount_point: &str) -> Option<f64> {
        families
            .iter()
            .find(|f| f.name == name)?
            .samples
            .iter()
            .find(|s| s.labels[2].1 == mount_point)
            .map(|s| s.value)
    }

    #[test]
    fn parses_mounts() {
        let mounts = parse_mounts(MOUNTS);
        assert_eq!(mounts.len(), 16);
        assert_eq!(
            mounts[5],
            Mount {
                device: "/dev/vda".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                read_only: false,
            }
        );
        assert_eq!(mounts[12].mount_point, "/srv/my data");
        assert!(mounts[12].read_only);
        assert!(mounts[6].read_only);
    }

    #[test]
    fn default_excludes_leave_what_node_exporter_reports() {
        let (mount_points, fs_types) = defaults();
        let selected = select(parse_mounts(MOUNTS), &mount_points, &fs_types);
        let points: Vec<&str> = selected.iter().map(|m| m.mount_point.as_str()).collect();
        // `/` twice with the same labels is reported once (the first line wins).
        assert_eq!(points, ["/", "/srv/my data", "/tmp"]);
    }

    #[test]
    fn rootfs_prefix_is_stripped_and_statted_through() {
        assert_eq!(strip_root("/host", "/host/data").as_deref(), Some("/data"));
        assert_eq!(strip_root("/host/", "/host").as_deref(), Some("/"));
        assert_eq!(strip_root("/host", "/hostile"), None);
        assert_eq!(strip_root("/host", "/data"), None);
        assert_eq!(strip_root("/", "/data"), None);
        assert_eq!(stat_path("/host", "/data"), "/host/data");
        assert_eq!(stat_path("/", "/data"), "/data");
        assert_eq!(stat_path("/host", "/"), "/host/");
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/tab\011x\012y"), "/tab\tx\ny");
        assert_eq!(unescape_octal(r"/back\134slash"), "/back\\slash");
        assert_eq!(unescape_octal(r"/bad\9xx\04"), r"/bad\9xx\04");
        assert_eq!(unescape_octal(r"/big\400"), r"/big\400");
        assert_eq!(unescape_octal(r"\303\251t\303\251"), "été");
        assert_eq!(unescape_octal("/plain"), "/plain");
    }

    #[test]
    fn families_follow_node_exporter() {
        let mounts = [mount("/ok"), mount("/bad")];
        let families = families(
            &mounts,
            &[Outcome::Usage(usage(4096.0)), Outcome::DeviceError],
        );
        let names: Vec<&str> = families.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "node_filesystem_avail_bytes",
                "node_filesystem_device_error",
                "node_filesystem_files",
                "node_filesystem_files_free",
                "node_filesystem_free_bytes",
                "node_filesystem_readonly",
                "node_filesystem_size_bytes",
            ]
        );
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/ok"),
            Some(4096.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_free_bytes", "/ok"),
            Some(2048.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_avail_bytes", "/ok"),
            Some(1024.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_readonly", "/ok"),
            Some(0.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_device_error", "/ok"),
            Some(0.0)
        );
        // A failed mount has only its error flag, like node_exporter 1.5.
        assert_eq!(
            sample(&families, "node_filesystem_device_error", "/bad"),
            Some(1.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/bad"),
            None
        );
        assert_eq!(sample(&families, "node_filesystem_readonly", "/bad"), None);
        let labels: Vec<&str> = families[1].samples[0]
            .labels
            .iter()
            .map(|(k, _)| k.as_ref())
            .collect();
        assert_eq!(labels, ["device", "fstype", "mountpoint"]);
    }

    /// A fake `statfs` whose calls on paths starting with `/hung` block until released.
    #[derive(Default)]
    struct Fake {
        released: Mutex<bool>,
        wake: Condvar,
        calls: Mutex<Vec<String>>,
        hung_returned: AtomicBool,
    }

    impl Fake {
        fn statter(self: &Arc<Self>, timeout: Duration) -> Statter {
            let fake = Arc::clone(self);
            Statter::with_statfs(
                timeout,
                Arc::new(move |path: &str| {
                    fake.calls.lock().unwrap().push(path.to_owned());
                    if path.starts_with("/hung") {
                        let mut released = fake.released.lock().unwrap();
                        while !*released {
                            released = fake.wake.wait(released).unwrap();
                        }
                        fake.hung_returned.store(true, Ordering::SeqCst);
                    }
                    if path == "/error" {
                        return Err(io::ErrorKind::PermissionDenied.into());
                    }
                    Ok(usage(1000.0))
                }),
            )
        }

        fn calls(&self, path: &str) -> usize {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|p| *p == path)
                .count()
        }

        fn release(&self) {
            *self.released.lock().unwrap() = true;
            self.wake.notify_all();
        }
    }

    #[test]
    fn a_hung_mount_is_marked_stuck_and_skipped_until_it_returns() {
        let timeout = Duration::from_millis(200);
        let fake = Arc::new(Fake::default());
        let statter = fake.statter(timeout);
        let mounts = || vec![mount("/"), mount("/hung"), mount("/error"), mount("/data")];

        let start = Instant::now();
        let families = statter.collect(mounts());
        let elapsed = start.elapsed();
        assert!(elapsed >= timeout && elapsed < timeout * 10, "{elapsed:?}");
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/"),
            Some(1000.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/data"),
            Some(1000.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_device_error", "/hung"),
            Some(1.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/hung"),
            None
        );
        assert_eq!(
            sample(&families, "node_filesystem_device_error", "/error"),
            Some(1.0)
        );
        assert!(lock(&statter.stuck).contains("/hung"));
        assert!(!lock(&statter.stuck).contains("/error"));

        // While the call is pending the mount is not statted again, and nothing waits.
        let start = Instant::now();
        let families = statter.collect(mounts());
        assert!(start.elapsed() < timeout, "{:?}", start.elapsed());
        assert_eq!(fake.calls("/hung"), 1);
        assert_eq!(fake.calls("/"), 2);
        assert_eq!(
            sample(&families, "node_filesystem_device_error", "/hung"),
            Some(1.0)
        );

        // Once the call returns the mount recovers.
        fake.release();
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock(&statter.stuck).contains("/hung") {
            assert!(
                Instant::now() < deadline,
                "the stuck mark was never cleared"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(fake.hung_returned.load(Ordering::SeqCst));
        let families = statter.collect(mounts());
        assert_eq!(fake.calls("/hung"), 2);
        assert_eq!(
            sample(&families, "node_filesystem_device_error", "/hung"),
            Some(0.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/hung"),
            Some(1000.0)
        );
    }

    #[test]
    fn mounts_queued_behind_hung_workers_are_still_statted() {
        let timeout = Duration::from_millis(200);
        let fake = Arc::new(Fake::default());
        let statter = fake.statter(timeout);
        let mut mounts: Vec<Mount> = (0..6).map(|i| mount(&format!("/hung{i}"))).collect();
        mounts.push(mount("/a"));
        mounts.push(mount("/b"));

        let start = Instant::now();
        let families = statter.collect(mounts);
        let elapsed = start.elapsed();
        // Four workers hang, are replaced after one timeout, two more hang: two timeouts.
        assert!(elapsed < timeout * 6, "{elapsed:?}");
        for i in 0..6 {
            let point = format!("/hung{i}");
            assert_eq!(
                sample(&families, "node_filesystem_device_error", &point),
                Some(1.0)
            );
        }
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/a"),
            Some(1000.0)
        );
        assert_eq!(
            sample(&families, "node_filesystem_size_bytes", "/b"),
            Some(1000.0)
        );
        assert_eq!(lock(&statter.stuck).len(), 6);
        fake.release();
    }

    #[test]
    fn no_mounts_no_threads() {
        let statter = Statter::new(Duration::from_millis(10), std::path::Path::new("/"));
        let families = statter.collect(Vec::new());
        assert!(families.iter().all(|f| f.samples.is_empty()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn statfs_of_root() {
        let usage = statfs("/").unwrap();
        assert!(usage.size > 0.0 && usage.free <= usage.size && usage.avail <= usage.free);
        assert!(statfs("/definitely/not/here").is_err());
    }
}
