//! The command line explains itself: a version, help text on every command and argument, and
//! shell completions generated from the same definition.

use std::process::Command;

use clap::CommandFactory as _;
use meshlens::cli::Cli;

fn meshlens(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(args)
        .output()
        .unwrap()
}

/// Every subcommand has an about, every argument (but clap's own help and version) a help.
fn missing_help(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("{path} --{id}"));
        }
    }
    for sub in cmd.get_subcommands() {
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.get_name() != "help" && sub.get_about().is_none() && sub.get_long_about().is_none() {
            missing.push(format!("{sub_path} (no about)"));
        }
        missing_help(sub, &sub_path, missing);
    }
}

#[test]
fn every_command_and_argument_has_help() {
    let cmd = Cli::command();
    cmd.clone().debug_assert();
    let mut missing = Vec::new();
    missing_help(&cmd, "meshlens", &mut missing);
    assert!(
        missing.is_empty(),
        "without help text:\n{}",
        missing.join("\n")
    );
}

#[test]
fn version_is_the_crate_version() {
    let out = meshlens(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("meshlens {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bash_completions_know_the_subcommands() {
    let out = meshlens(&["completions", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "doctor",
        "proxy",
        "tap",
        "completions",
        "sandbox",
        "identity",
    ] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    assert!(
        script.contains("--config"),
        "bash completion lacks proxy's --config"
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = meshlens(&["completions", shell]);
        assert!(out.status.success() && out.stdout.len() > 100, "{shell}");
    }
    assert_eq!(meshlens(&["completions", "tcsh"]).status.code(), Some(2));
}
