//! `meshlens policy lint|eval`: check Linkerd policy files (and our schema contracts) the way
//! the admission webhook would, and answer "would this call be allowed, and by what?".
//! `lint` exits 0 when clean (warnings allowed), 1 with errors; `eval` exits 0 on allow,
//! 1 on deny or no route; both exit 2 on a usage error.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::policy::authz::ClientTls;
use crate::policy::defaults::{DefaultPolicy, Settings, parse_networks};
use crate::policy::eval::{HttpRequest, Request, Verdict};
use crate::policy::index::Index;
use crate::policy::lint::{admitted, lint};
use crate::policy::load::load_paths;
use crate::policy::workload::load_workloads;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check policy files and directories as Linkerd's admission webhook would, plus
    /// references between them. Exit 0 clean (warnings allowed), 1 errors, 2 usage error.
    Lint {
        /// YAML files or directories (read recursively: *.yaml, *.yml).
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Also warn about identities, service accounts, namespaces and Servers that match no
        /// workload of this file (a YAML list of workloads).
        #[arg(long, value_name = "FILE")]
        workloads: Option<PathBuf>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Decide one request or connection as the target's inbound proxy would. Exit 0 allow,
    /// 1 deny or no route, 2 usage error.
    Eval {
        /// Policy files or directories.
        #[arg(long, required = true, value_name = "DIR")]
        policies: Vec<PathBuf>,
        /// The workloads (a YAML list of {namespace, name, serviceAccount, labels, ports,
        /// annotations, probes}; probes are [{path, port}] of the HTTP probes).
        #[arg(long, value_name = "FILE")]
        workloads: PathBuf,
        /// The target: namespace/workload:port (port number or declared port name).
        #[arg(long, value_name = "NS/WORKLOAD:PORT")]
        to: String,
        /// The client's mTLS identity, e.g. web.shop.serviceaccount.identity.linkerd.cluster.local.
        #[arg(long, value_name = "ID", required_unless_present = "unauthenticated")]
        client_id: Option<String>,
        /// The client is not meshed (plaintext).
        #[arg(long, conflicts_with = "client_id")]
        unauthenticated: bool,
        /// The client's source address (policies' networks and Linkerd's localhost rule see it).
        #[arg(long, value_name = "IP")]
        client_ip: IpAddr,
        /// HTTP method (default GET, or POST with --grpc). Without --method, --path and
        /// --grpc the connection is judged as TCP.
        #[arg(long)]
        method: Option<String>,
        /// Request path, query string allowed (default /).
        #[arg(long)]
        path: Option<String>,
        /// The request's :authority / Host.
        #[arg(long)]
        host: Option<String>,
        /// A request header, `name: value`; repeatable.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A gRPC call: denials become grpc-status 7, missing routes NOT_FOUND.
        #[arg(long)]
        grpc: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Comma-separated networks the automatic probe route admits kubelet probes from
        /// (Linkerd's policyController.probeNetworks).
        #[arg(long, value_name = "CIDRS", default_value = crate::policy::defaults::DEFAULT_PROBE_NETWORKS)]
        probe_networks: String,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// The cluster-wide default inbound policy (Linkerd's proxy.defaultInboundPolicy).
    #[arg(long, value_name = "POLICY", default_value = "all-unauthenticated")]
    default_policy: DefaultPolicy,
    /// Comma-separated cluster networks (Linkerd's clusterNetworks).
    #[arg(long, value_name = "CIDRS", default_value = crate::policy::defaults::DEFAULT_CLUSTER_NETWORKS)]
    cluster_networks: String,
}

impl ClusterArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            default_policy: self.default_policy,
            cluster_networks: parse_networks(&self.cluster_networks)
                .map_err(anyhow::Error::msg)
                .context("--cluster-networks")?,
            ..Settings::default()
        })
    }
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    Ok(super::or_usage(|| match cmd {
        PolicyCommand::Lint {
            paths,
            workloads,
            cluster,
        } => run_lint(&paths, workloads, &cluster),
        PolicyCommand::Eval {
            policies,
            workloads,
            to,
            client_id,
            unauthenticated: _,
            client_ip,
            method,
            path,
            host,
            headers,
            grpc,
            cluster,
            probe_networks,
            json,
        } => {
            let http = (method.is_some() || path.is_some() || grpc).then(|| HttpRequest {
                method: method.unwrap_or_else(|| if grpc { "POST" } else { "GET" }.into()),
                path: path.unwrap_or_else(|| "/".into()),
                host,
                headers: headers
                    .iter()
                    .map(|h| {
                        let (n, v) = h.split_once(':').unwrap_or((h, ""));
                        (n.trim().to_string(), v.trim().to_string())
                    })
                    .collect(),
                grpc,
            });
            let tls = match client_id {
                Some(id) => ClientTls::Mtls(Some(id)),
                None => ClientTls::None,
            };
            let inputs = EvalInputs {
                policies,
                workloads,
                to,
                probe_networks,
            };
            run_eval(&inputs, tls, client_ip, http, &cluster, json)
        }
    }))
}

fn run_lint(
    paths: &[PathBuf],
    workloads: Option<PathBuf>,
    cluster: &ClusterArgs,
) -> anyhow::Result<ExitCode> {
    let settings = cluster.settings()?;
    let workloads = workloads.map(|p| load_workloads(&p)).transpose()?;
    let (set, load_errors) = load_paths(paths);
    let report = lint(&set, load_errors, workloads.as_deref(), &settings);
    for e in &report.errors {
        out!("error: {e}");
    }
    for w in &report.warnings {
        out!("warning: {w}");
    }
    out!(
        "{} resources, {} contracts: {} errors, {} warnings",
        report.resources,
        report.contracts.len(),
        report.errors.len(),
        report.warnings.len()
    );
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where `eval` reads from and which workload port it targets.
struct EvalInputs {
    policies: Vec<PathBuf>,
    workloads: PathBuf,
    to: String,
    /// `--probe-networks`, parsed with the other settings so a bad list is a usage error.
    probe_networks: String,
}

fn run_eval(
    inputs: &EvalInputs,
    tls: ClientTls,
    client_ip: IpAddr,
    http: Option<HttpRequest>,
    cluster: &ClusterArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        probe_networks: parse_networks(&inputs.probe_networks)
            .map_err(anyhow::Error::msg)
            .context("--probe-networks")?,
        ..cluster.settings()?
    };
    let workloads = load_workloads(&inputs.workloads)?;
    let (set, load_errors) = load_paths(&inputs.policies);
    let to = inputs.to.as_str();
    if let Some(first) = load_errors.first() {
        bail!(
            "{first} ({} problem(s) in the policies; `meshlens policy lint` lists them)",
            load_errors.len()
        );
    }
    // Resources the webhook would reject never reach a cluster, so they do not take part.
    let (set, rejected) = admitted(set);
    for e in &rejected {
        eprintln!("warning: ignored, the admission webhook would reject it: {e}");
    }
    let (target, port) = to
        .rsplit_once(':')
        .with_context(|| format!("--to {to}: expected NS/WORKLOAD:PORT"))?;
    let (namespace, name) = target
        .split_once('/')
        .with_context(|| format!("--to {to}: expected NS/WORKLOAD:PORT"))?;
    let workload = workloads
        .iter()
        .find(|w| w.namespace == namespace && w.name == name)
        .with_context(|| {
            format!("--to {to}: no workload {namespace}/{name} in the workloads file")
        })?;
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => workload
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some(port))
            .map(|p| p.port)
            .with_context(|| format!("--to {to}: `{port}` is neither a port number nor a port name of {namespace}/{name}"))?,
    };
    let index = Index::build(&set, &workloads, &settings);
    let request = Request {
        namespace: namespace.into(),
        workload: name.into(),
        port,
        client_ip,
        tls,
        http,
    };
    let decision = index.evaluate(&request)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&decision.to_json())?);
    } else {
        print!("{}", decision.to_text());
    }
    Ok(if decision.verdict == Verdict::Allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
