use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
