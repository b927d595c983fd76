//! The `lookout` binary: parse the command line and hand it to the library.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    lookout::cli::main(&lookout::cli::Cli::parse())
}
