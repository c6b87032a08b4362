//! `meshlens tap ADDR...`: the live events of one or many proxies, like `linkerd viz tap`.
//! Each address is a proxy's admin endpoint; every connection is retried until Ctrl-C (or
//! `--max` events), and its errors go to stderr one line each.

use std::process::ExitCode;

use clap::{ArgGroup, Args, ValueEnum};

use crate::tap::{Direction, Event, EventKind, Filter};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("credentials").required(true).args(["ca", "token"])))]
pub struct TapArgs {
    /// Admin addresses of the proxies (host:port), e.g. 127.0.0.1:4191.
    #[arg(required = true, value_name = "ADDR")]
    pub addrs: Vec<String>,
    #[command(flatten)]
    pub auth: super::connect::TapAuthArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// How to print: a table, or JSON.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
}

/// The tap stream's filters, shared by the commands that follow proxies.
#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    /// Only requests from this workload (namespace/name).
    #[arg(long, value_name = "NS/NAME")]
    pub from: Option<String>,
    /// Only requests to this workload (namespace/name).
    #[arg(long, value_name = "NS/NAME")]
    pub to: Option<String>,
    /// Only requests from this namespace.
    #[arg(long, value_name = "NS")]
    pub from_namespace: Option<String>,
    /// Only requests to this namespace.
    #[arg(long, value_name = "NS")]
    pub to_namespace: Option<String>,
    /// An mTLS identity on either side.
    #[arg(long)]
    pub identity: Option<String>,
    /// Only requests with this HTTP method (GET, POST, ...).
    #[arg(long)]
    pub method: Option<String>,
    /// A path prefix, e.g. /v1/orders.
    #[arg(long)]
    pub path: Option<String>,
    /// Only requests to this authority (host:port).
    #[arg(long)]
    pub authority: Option<String>,
    /// A status class: 1xx .. 5xx (request-start events carry none and are left out).
    #[arg(long, value_name = "CLASS")]
    pub status: Option<String>,
    /// allow, deny or no_route.
    #[arg(long)]
    pub decision: Option<String>,
    /// An Avro subject of a request or response body.
    #[arg(long)]
    pub subject: Option<String>,
    /// Only events with an Avro body that did not decode or conform.
    #[arg(long)]
    pub invalid: bool,
    /// At most this many events per second from each proxy; the rest are counted as lost.
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One line per event, like `linkerd viz tap`.
    Table,
    /// One JSON object per line, with the field names of the tap event Avro schema.
    Json,
}

impl FilterArgs {
    pub fn filter(&self) -> anyhow::Result<Filter> {
        let mut f = Filter::default();
        let text = [
            ("from", &self.from),
            ("to", &self.to),
            ("from-namespace", &self.from_namespace),
            ("to-namespace", &self.to_namespace),
            ("identity", &self.identity),
            ("method", &self.method),
            ("path", &self.path),
            ("authority", &self.authority),
            ("status", &self.status),
            ("decision", &self.decision),
            ("subject", &self.subject),
        ];
        for (key, value) in text {
            if let Some(v) = value {
                f.set(key, v)?;
            }
        }
        if self.invalid {
            f.invalid_only = true;
        }
        if let Some(r) = self.rate {
            f.set("rate", &r.to_string())?;
        }
        Ok(f)
    }
}

pub fn run(args: TapArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.filter()?;
    let auth = args.auth.auth()?;
    let rt = super::connect::runtime()?;
    rt.block_on(async move {
        let (client, mut rx, status) = super::connect::start(&args.addrs, auth, filter);
        let result = print_events(&mut rx, args.output, args.max).await;
        status.abort();
        client.stop().await;
        result?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints events as they arrive until the channel closes, Ctrl-C, or `max` events.
pub async fn print_events(
    rx: &mut tokio::sync::mpsc::Receiver<Event>,
    output: Output,
    max: Option<u64>,
) -> anyhow::Result<()> {
    let mut seen = 0u64;
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(event) = event else { break };
        print_event(&event, output)?;
        seen += 1;
        if max.is_some_and(|m| seen >= m) {
            break;
        }
    }
    Ok(())
}

/// Prints one event as `output` says.
pub fn print_event(event: &Event, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Table => {
            for line in table_lines(event) {
                out!("{line}");
            }
        }
        Output::Json => out!("{}", json_line(event)),
    }
    Ok(())
}

/// The event as JSON, one line, field names from the Avro schema (unions unwrapped).
pub fn json_line(e: &Event) -> String {
    crate::avro::to_friendly_json(
        crate::tap::codec::schema(),
        &crate::tap::codec::to_value(e),
        None,
    )
}

/// `linkerd viz tap`'s lines, then one indented line per Avro body and for the decision.
pub fn table_lines(e: &Event) -> Vec<String> {
    let dir = match e.direction {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
    };
    let tls = if e.tls.secured {
        "true".to_string()
    } else {
        e.tls.reason.clone().unwrap_or_else(|| "false".into())
    };
    let base = format!(
        "id={}:{} proxy={dir} src={}{} dst={}{} tls={tls}",
        e.proxy,
        e.stream,
        e.source.addr,
        ident(&e.source.identity),
        e.destination.addr,
        ident(&e.destination.identity),
    );
    let http = e.http.as_ref();
    let mut first = match e.kind {
        EventKind::RequestStart => {
            let h = http.cloned().unwrap_or_default();
            format!(
                "req {base} :method={} :authority={} :path={}",
                h.method, h.authority, h.path
            )
        }
        EventKind::ResponseStart => {
            let h = http.cloned().unwrap_or_default();
            format!(
                "rsp {base} :status={} latency={}µs",
                h.status.map_or("-".into(), |s| s.to_string()),
                h.latency_us.unwrap_or(0)
            )
        }
        EventKind::ResponseEnd => {
            let h = http.cloned().unwrap_or_default();
            let grpc = h
                .grpc_status
                .map(|g| format!(" grpc-status={g}"))
                .unwrap_or_default();
            format!(
                "end {base}{grpc} duration={}µs response-length={}B",
                h.latency_us.unwrap_or(0),
                h.response_bytes
            )
        }
        EventKind::TcpOpen => format!("tcp-open {base}"),
        EventKind::TcpClose => {
            let t = e.tcp.clone().unwrap_or_default();
            format!(
                "tcp-close {base} duration={}µs bytes-in={}B bytes-out={}B",
                t.duration_us.unwrap_or(0),
                t.bytes_in,
                t.bytes_out
            )
        }
        EventKind::Lost => {
            let from = if e.proxy.is_empty() {
                String::new()
            } else {
                format!(" proxy={}", e.proxy)
            };
            return vec![format!("lost{from} events={}", e.lost)];
        }
    };
    if let Some(err) = http.and_then(|h| h.proxy_error.as_ref()) {
        first.push_str(&format!(" proxy-error={err:?}"));
    }
    let mut lines = vec![first];
    if let Some(d) = &e.decision
        && (e.kind == EventKind::RequestStart || d.verdict != "allow")
    {
        lines.push(format!("  {}", decision(d)));
    }
    for i in &e.avro {
        let subject = i.subject.as_deref().unwrap_or("(no subject)");
        let version = i.version.map(|v| format!("@v{v}")).unwrap_or_default();
        let mut line = format!(
            "  avro {subject}{version} {}",
            if i.valid { "valid" } else { "INVALID" }
        );
        if let Some(d) = &i.drift {
            line.push_str(&format!(" drift={d}"));
        }
        if let Some(c) = &i.contract {
            line.push_str(&format!(
                " contract={c}{}",
                i.mode
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(first) = i.errors.first() {
            line.push_str(&format!(": {first}"));
        }
        lines.push(line);
    }
    lines
}

fn ident(id: &Option<String>) -> String {
    id.as_ref().map(|i| format!("({i})")).unwrap_or_default()
}

fn decision(d: &crate::tap::Decision) -> String {
    let by = match (&d.authz_kind, &d.authz_name) {
        (Some(k), Some(n)) => format!("{}/{n}", k.to_ascii_lowercase()),
        (None, Some(n)) => n.clone(),
        _ => String::new(),
    };
    if d.verdict == "allow" {
        if by.is_empty() {
            "allow".into()
        } else {
            format!("allow by {by}")
        }
    } else {
        let route = d
            .route_name
            .as_ref()
            .map(|r| format!(" (route {r})"))
            .unwrap_or_default();
        format!("{}{route}: {}", d.verdict, d.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::{Decision, Http, Inspection};

    #[test]
    fn lines_read_like_viz_tap_with_avro_and_policy() {
        let mut e = Event::lost(0, 1);
        e.kind = EventKind::RequestStart;
        e.stream = 7;
        e.proxy = "shop/orders".into();
        e.source.addr = "127.0.0.2:5000".into();
        e.source.identity = Some("web.shop".into());
        e.destination.addr = "127.0.0.1:8080".into();
        e.tls.secured = true;
        e.http = Some(Http {
            method: "GET".into(),
            authority: "orders.shop:80".into(),
            path: "/v1/orders/7".into(),
            ..Http::default()
        });
        e.decision = Some(Decision {
            verdict: "allow".into(),
            server_kind: "server".into(),
            server_name: "orders-http".into(),
            route_kind: Some("HTTPRoute".into()),
            route_name: Some("orders-read".into()),
            authz_kind: Some("AuthorizationPolicy".into()),
            authz_name: Some("web-reads-orders".into()),
            reason: String::new(),
            tried: Vec::new(),
        });
        e.avro = vec![Inspection {
            subject: Some("shop.orders-value".into()),
            version: Some(2),
            valid: false,
            drift: Some("incompatible".into()),
            errors: vec!["field total: missing".into()],
            ..Inspection::default()
        }];
        assert_eq!(
            table_lines(&e),
            vec![
                "req id=shop/orders:7 proxy=in src=127.0.0.2:5000(web.shop) dst=127.0.0.1:8080 tls=true :method=GET :authority=orders.shop:80 :path=/v1/orders/7",
                "  allow by authorizationpolicy/web-reads-orders",
                "  avro shop.orders-value@v2 INVALID drift=incompatible: field total: missing",
            ]
        );
        e.kind = EventKind::ResponseEnd;
        e.avro.clear();
        let d = e.decision.as_mut().unwrap();
        d.verdict = "deny".into();
        d.reason = "no authorization matched".into();
        e.http.as_mut().unwrap().latency_us = Some(123);
        e.http.as_mut().unwrap().response_bytes = 0;
        assert_eq!(
            table_lines(&e)[1],
            "  deny (route orders-read): no authorization matched"
        );
        assert!(table_lines(&e)[0].ends_with("duration=123µs response-length=0B"));
        let json: serde_json::Value = serde_json::from_str(&json_line(&e)).unwrap();
        assert_eq!(json["kind"], "RESPONSE_END");
        assert_eq!(json["http"]["path"], "/v1/orders/7");
        assert_eq!(table_lines(&Event::lost(4, 0)), vec!["lost events=4"]);
    }
}
