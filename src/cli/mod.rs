//! The command line: one file per subcommand family. Errors reach `main` as one line.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::avro::Schema;

/// Writes a line to standard output. Unlike `println!`, a reader that closed the pipe
/// (`meshlens ... | head`) becomes an `io::Error` that `main` ends on quietly, instead of a
/// panic — and SIGPIPE stays ignored, so servers survive clients that hang up.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod avro;
mod completions;
mod connect;
mod doctor;
mod edges;
mod identity;
mod policy;
mod proxy;
mod record;
mod registry;
mod replay;
mod sandbox;
mod schema;
mod tap;
mod top;

#[derive(Parser, Debug)]
#[command(
    name = "meshlens",
    version,
    about = "See a service mesh: identities, mTLS, policy decisions and the Avro messages on every hop"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the desktop app (the default when no command is given).
    #[cfg(feature = "gui")]
    Ui(UiArgs),
    /// Work with Avro payloads.
    #[command(subcommand)]
    Avro(avro::AvroCommand),
    /// Work with Avro schemas.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Serve a schema registry from a directory; copy to and from remote registries.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Make trust anchors and issuers, issue workload certificates, inspect certificates.
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Lint Linkerd policy and schema contracts; evaluate a request against them.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run one sidecar proxy (inbound mTLS, outbound, admin) from a config file.
    Proxy(proxy::ProxyArgs),
    /// Watch the live events of proxies (their admin port's /tap stream), like `linkerd viz tap`.
    Tap(tap::TapArgs),
    /// Who talks to whom, with which identities, over mTLS or not, and how often, like
    /// `linkerd viz edges`: from tap streams, proxies' /metrics, or a Prometheus server.
    Edges(edges::EdgesArgs),
    /// Save the live events of proxies to a recording (an Avro container file of tap events).
    Record(record::RecordArgs),
    /// Play a recording back, printing its events as `meshlens tap` does.
    Replay(replay::ReplayArgs),
    /// A live table of requests by route, like `linkerd viz top`.
    Top(top::TopArgs),
    /// Bring up a whole mesh in this process from a manifest (the bundled demo by default).
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Check a proxy configuration or a connection to a mesh, and say how to fix what is wrong.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
}

#[cfg(feature = "gui")]
#[derive(clap::Args, Debug)]
pub struct UiArgs {
    /// Do not start the bundled demo sandbox inside the app.
    #[arg(long)]
    pub no_demo: bool,
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};
    let from_env = || EnvFilter::try_from_default_env().ok();
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(from_env().unwrap_or_else(|| EnvFilter::new("warn")));
    let registry = tracing_subscriber::registry().with(terminal);
    // The window's log panel shows more than the terminal by default: a window user has no
    // other place to see what the sandbox and sources say. winit's warnings about the
    // display (no XSETTINGS daemon, a 0 mm screen) are not the user's problem to fix.
    #[cfg(feature = "gui")]
    let registry = registry.with(
        crate::ui::log_panel::CaptureLayer
            .with_filter(from_env().unwrap_or_else(|| EnvFilter::new("info,winit=error"))),
    );
    let _ = registry.try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(feature = "gui")]
        None => crate::ui::run_app(true),
        #[cfg(feature = "gui")]
        Some(Command::Ui(args)) => crate::ui::run_app(!args.no_demo),
        #[cfg(not(feature = "gui"))]
        None => {
            use clap::CommandFactory as _;
            Cli::command().print_help()?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Avro(cmd)) => avro::run(cmd),
        Some(Command::Schema(cmd)) => schema::run(cmd),
        Some(Command::Registry(cmd)) => registry::run(cmd),
        Some(Command::Identity(cmd)) => identity::run(cmd),
        Some(Command::Policy(cmd)) => policy::run(cmd),
        Some(Command::Proxy(args)) => proxy::run(args),
        Some(Command::Tap(args)) => tap::run(args),
        Some(Command::Edges(args)) => edges::run(args),
        Some(Command::Record(args)) => record::run(args),
        Some(Command::Replay(args)) => replay::run(args),
        Some(Command::Top(args)) => top::run(args),
        Some(Command::Sandbox(cmd)) => sandbox::run(cmd),
        Some(Command::Doctor(args)) => doctor::run(args),
        Some(Command::Completions(args)) => completions::run(args),
    }
}

/// Whether an error is a reader closing our standard output (`| head`): not a failure.
pub fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes as one line, `outer: cause: cause`. A cause whose text its
/// outer message already ends with (errors that print their `source` themselves) is not
/// repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Runs a command whose errors are usage or parse errors: exit 2 with one line, so exit 1
/// stays free for the command's own "no" (incompatible, denied, lint errors).
fn or_usage(f: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    f().unwrap_or_else(|e| {
        if closed_pipe(&e) {
            return ExitCode::SUCCESS;
        }
        usage_error(&e)
    })
}

/// Reports a usage error clap cannot see (a malformed option value, options that need
/// each other): one line, exit 2, as clap's own.
fn usage_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", one_line(e));
    ExitCode::from(2)
}

/// Reads and parses a schema file; errors name the file.
fn read_schema(path: &Path) -> anyhow::Result<Arc<Schema>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let schema = Schema::parse(&text).with_context(|| path.display().to_string())?;
    Ok(Arc::new(schema))
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// Like the crate's error types: the message quotes its own `source`.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Read {
        path: &'static str,
        source: std::io::Error,
    }

    fn gone() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "gone")
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let e = anyhow::Error::new(Read {
            path: "proxy.yaml",
            source: gone(),
        });
        assert_eq!(one_line(&e), "cannot read proxy.yaml: gone");
        let e = e.context("sandbox");
        assert_eq!(one_line(&e), "sandbox: cannot read proxy.yaml: gone");
    }

    #[test]
    fn causes_not_in_the_message_are_appended() {
        let e = anyhow::Error::new(gone()).context("cannot read proxy.yaml");
        assert_eq!(one_line(&e), "cannot read proxy.yaml: gone");
    }
}
