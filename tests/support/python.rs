//! The Python venv at `target/pysdk` (made by `.ci/python-sdks`): the official cloud SDKs
//! that check the verifying mocks, and aiosmtpd, the SMTP server of the email tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python, installing the SDKs (once per test run) when they are missing.
pub(crate) fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let python = root().join("target/pysdk/bin/python");
        // The script writes its pin list last, after a complete install.
        if python.is_file() && root().join("target/pysdk/.lookout-pins").is_file() {
            return Ok(python);
        }
        eprintln!("target/pysdk is missing or incomplete; running .ci/python-sdks");
        match Command::new("bash")
            .arg(root().join(".ci/python-sdks"))
            .current_dir(root())
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
