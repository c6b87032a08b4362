use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = meshlens::cli::Cli::parse();
    meshlens::cli::init_logging();
    match meshlens::cli::run(cli) {
        Ok(code) => code,
        // A reader that closed the pipe (`| head`) has all it wanted.
        Err(e) if meshlens::cli::closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
