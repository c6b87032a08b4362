use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Exit quietly when a reader closes the pipe (`meshlens ... | head`), as Unix tools do,
    // instead of panicking on the next write.
    #[cfg(unix)]
    // SAFETY: resetting a signal to its default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = meshlens::cli::Cli::parse();
    meshlens::cli::init_logging();
    match meshlens::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
