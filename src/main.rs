use std::process::ExitCode;

use clap::Parser;

/// The proxies allocate per request and per frame; mimalloc spends far less time on it than
/// glibc's allocator (as linkerd2-proxy uses jemalloc). See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = meshlens::cli::Cli::parse();
    meshlens::cli::init_logging();
    match meshlens::cli::run(cli) {
        Ok(code) => code,
        // A reader that closed the pipe (`| head`) has all it wanted.
        Err(e) if meshlens::cli::closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", meshlens::cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
