//! A guard for the real `lookout` binary: temp dir with config and state, free port,
//! waits for `/-/ready`, captures stdout/stderr to files, killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::process::ChildGuard;

/// A config that only enables host metrics.
pub(crate) const HOST_ONLY_CONFIG: &str = "host:\n  enabled: true\n";

/// Generous: a debug build under a loaded 2-core CI box.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running lookout; killed when dropped.
pub(crate) struct Lookout {
    // Declared before `dir` so the process dies before its state dir is removed.
    process: ChildGuard,
    dir: TempDir,
}

impl Lookout {
    /// Starts lookout with `config` as its config file.
    pub(crate) fn start(config: &str) -> Lookout {
        Lookout::start_with_args(config, &[])
    }

    /// Starts lookout with `config` and extra command-line arguments.
    pub(crate) fn start_with_args(config: &str, extra_args: &[&str]) -> Lookout {
        Lookout::launch(config, extra_args, StateDir::Own, "/-/ready")
    }

    /// Starts lookout for a config whose listener speaks only TLS: waits for the port to
    /// accept connections (the caller checks readiness over HTTPS).
    pub(crate) fn start_tls(config: &str) -> Lookout {
        Lookout::launch(config, &[], StateDir::Own, "")
    }

    /// Starts lookout on `state_dir` (kept by the caller, e.g. across a restart).
    pub(crate) fn start_with_state(config: &str, state_dir: &Path) -> Lookout {
        Lookout::launch(config, &[], StateDir::At(state_dir.to_owned()), "/-/ready")
    }

    /// Starts lookout with its open-file limit (soft and hard) set to `limit`, through a
    /// shell's `ulimit -n` that then `exec`s lookout (so `pid()` is lookout's).
    pub(crate) fn start_with_fd_limit(config: &str, limit: u32) -> Lookout {
        Lookout::launch_limited(config, &[], StateDir::Own, "/-/ready", Some(limit))
    }

    /// Starts lookout with the config's own `state_dir` and waits only for liveness
    /// (`/-/healthy`): for tests where the outbox cannot open yet.
    pub(crate) fn start_unready(config: &str) -> Lookout {
        Lookout::launch(config, &[], StateDir::FromConfig, "/-/healthy")
    }

    fn launch(config: &str, extra_args: &[&str], state: StateDir, ready_path: &str) -> Lookout {
        Lookout::launch_limited(config, extra_args, state, ready_path, None)
    }

    fn launch_limited(
        config: &str,
        extra_args: &[&str],
        state: StateDir,
        ready_path: &str,
        fd_limit: Option<u32>,
    ) -> Lookout {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("lookout.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let state_dir = match state {
            StateDir::Own => {
                let own = dir.path().join("state");
                std::fs::create_dir(&own).expect("create state dir");
                Some(own)
            }
            StateDir::At(path) => Some(path),
            StateDir::FromConfig => None,
        };
        let process = ChildGuard::start("lookout", dir.path(), ready_path, READY_TIMEOUT, |addr| {
            let mut command = match fd_limit {
                None => Command::new(binary()),
                Some(limit) => {
                    let mut shell = Command::new("sh");
                    shell
                        .arg("-c")
                        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                        .arg(binary());
                    shell
                }
            };
            command
                .arg("--config")
                .arg(&config_path)
                .arg("--listen")
                .arg(addr.to_string());
            if let Some(state_dir) = &state_dir {
                command.arg("--state-dir").arg(state_dir);
            }
            command.args(extra_args);
            command
        });
        Lookout { process, dir }
    }

    /// Kills lookout with SIGKILL (a crash) and waits for it to be gone.
    pub(crate) fn kill9(&mut self) {
        self.signal("KILL");
        assert!(
            self.wait_exit(Duration::from_secs(10)).is_some(),
            "lookout survived SIGKILL"
        );
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.process.addr()
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `base_url()` followed by `path`.
    /// Scrapes `/metrics` in the text format; panics (with lookout's logs) unless 200.
    pub(crate) fn metrics(&self) -> super::Exposition {
        let response = super::http_get(
            &self.url("/metrics"),
            &[("Accept", "text/plain;version=0.0.4")],
        )
        .expect("GET /metrics");
        assert_eq!(response.status, 200, "{}", self.logs());
        super::Exposition::parse(&response.text()).expect("exposition parses")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Posts an Alertmanager notification to `/alertmanager/{receiver}` and asserts it
    /// was accepted (200); returns the answer's JSON.
    pub(crate) fn post_alerts(&self, receiver: &str, body: &str) -> serde_json::Value {
        let response = super::http_request(
            "POST",
            &self.url(&format!("/alertmanager/{receiver}")),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .expect("post a notification");
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// From spawn to the first 200 on `/-/ready`.
    pub(crate) fn startup(&self) -> Duration {
        self.process.startup()
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("lookout.yaml")
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything lookout wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Everything lookout wrote to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        self.process.stdout()
    }

    /// Both logs, for panic messages.
    pub(crate) fn logs(&self) -> String {
        self.process.logs()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`) with `kill`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `within` for lookout to exit.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_exit(within)
    }
}

enum StateDir {
    /// A fresh `state` directory inside the guard's temp dir.
    Own,
    /// A directory the caller keeps.
    At(PathBuf),
    /// Whatever the config file says.
    FromConfig,
}

/// The binary Cargo built for this test run.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_lookout")
}
