//! A child-process guard: spawns a server on a free loopback port with its output in files,
//! waits until it answers a readiness URL, and kills it when dropped.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_addr, http_get};

/// How often a child that died before becoming ready (typically because another process
/// took its port between `free_addr` and its bind) is started again on a new port.
const START_ATTEMPTS: usize = 3;

/// A running child process; killed and reaped on drop.
pub(crate) struct ChildGuard {
    name: String,
    child: Child,
    addr: SocketAddr,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    startup: Duration,
}

impl ChildGuard {
    /// Starts `command_for(addr)` with stdout/stderr in `log_dir/<name>.{stdout,stderr}.log`
    /// and waits until `GET http://addr<ready_path>` answers 200, at most `timeout`.
    pub(crate) fn start(
        name: &str,
        log_dir: &Path,
        ready_path: &str,
        timeout: Duration,
        mut command_for: impl FnMut(SocketAddr) -> Command,
    ) -> ChildGuard {
        let stdout_path = log_dir.join(format!("{name}.stdout.log"));
        let stderr_path = log_dir.join(format!("{name}.stderr.log"));
        for attempt in 1..=START_ATTEMPTS {
            let addr = free_addr();
            let mut command = command_for(addr);
            command
                .stdin(Stdio::null())
                .stdout(File::create(&stdout_path).expect("log dir is writable"))
                .stderr(File::create(&stderr_path).expect("log dir is writable"));
            let started = Instant::now();
            let child = command
                .spawn()
                .unwrap_or_else(|error| panic!("cannot spawn {name} ({command:?}): {error}"));
            let mut guard = ChildGuard {
                name: name.to_owned(),
                child,
                addr,
                stdout_path: stdout_path.clone(),
                stderr_path: stderr_path.clone(),
                startup: Duration::ZERO,
            };
            match guard.wait_ready(ready_path, started + timeout) {
                Ok(()) => {
                    guard.startup = started.elapsed();
                    return guard;
                }
                Err(exit) if attempt < START_ATTEMPTS => {
                    eprintln!("{name} exited before ready ({exit}); retrying on a new port");
                }
                Err(exit) => panic!(
                    "{name} exited before ready ({exit}) {START_ATTEMPTS} times\n{}",
                    guard.logs()
                ),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `Err` when the child exited; panics on timeout.
    /// Waits for a 200 on `ready_path` over plain HTTP, or — for an empty path (a server
    /// that speaks only TLS) — for the port to accept connections.
    fn wait_ready(&mut self, ready_path: &str, deadline: Instant) -> Result<(), String> {
        let url = format!("http://{}{ready_path}", self.addr);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on own child") {
                return Err(status.to_string());
            }
            if ready_path.is_empty() {
                match std::net::TcpStream::connect(self.addr) {
                    Ok(_) => return Ok(()),
                    Err(error) if Instant::now() >= deadline => {
                        panic!(
                            "{} not listening in time: {error}\n{}",
                            self.name,
                            self.logs()
                        )
                    }
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
            }
            let last = match http_get(&url, &[]) {
                Ok(response) if response.status == 200 => return Ok(()),
                Ok(response) => format!("status {}", response.status),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                panic!(
                    "{} not ready at {url} in time; last: {last}\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// From spawn to the first 200 on the readiness URL.
    pub(crate) fn startup(&self) -> Duration {
        self.startup
    }

    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the child is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `within` for the child to exit on its own.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Both logs, for panic messages.
    pub(crate) fn logs(&self) -> String {
        format!(
            "--- {name} stdout ---\n{}\n--- {name} stderr ---\n{}",
            self.stdout(),
            self.stderr(),
            name = self.name
        )
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
