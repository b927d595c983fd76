//! The Python venv at `target/pysdk` (made by `.ci/python-sdks`): the official cloud SDKs
//! that check the verifying mocks, and aiosmtpd, the SMTP server of the email tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python, with the pinned SDKs: `.ci/python-sdks` runs once per test run; it
/// returns at once when the venv's pin list is the script's, and installs otherwise (a
/// missing venv, or one made before a pin was added or bumped).
pub(crate) fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let python = root().join("target/pysdk/bin/python");
        match Command::new("bash")
            .arg(root().join(".ci/python-sdks"))
            .current_dir(root())
            // Its progress lines are noise in test output; failures go to stderr.
            .stdout(std::process::Stdio::null())
            .status()
        {
            Ok(status) if status.success() && python.is_file() => Ok(python),
            Ok(status) => Err(format!(".ci/python-sdks failed ({status})")),
            Err(error) => Err(format!("could not run .ci/python-sdks: {error}")),
        }
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(why) if super::in_ci() => panic!("{why}; CI must have the Python SDKs"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}
