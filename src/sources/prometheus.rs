//! A Prometheus server that already scrapes the mesh's proxies (as Linkerd's viz Prometheus
//! does), asked through its HTTP API (`/api/v1/query`) for each family's increase over a
//! window, summed by the labels the edges and policy hits need. The answers become samples
//! under the family's name, so `metrics::derive` reads them like a scrape.

use std::time::Duration;

use serde::Deserialize;

use super::SourceError;
use super::fetch;
use super::metrics::{OWNER_KINDS, Scrape};
use super::prom_text::Sample;

/// Labels that place a series on an edge. `namespace`, `instance` and the owner kinds are
/// the ones a Prometheus scrape config adds; the rest are the proxy's.
fn edge_labels() -> Vec<String> {
    let mut l: Vec<String> = [
        "direction",
        "namespace",
        "instance",
        "tls",
        "no_tls_reason",
        "client_id",
        "server_id",
        "authority",
        "dst_namespace",
    ]
    .map(String::from)
    .to_vec();
    l.extend(OWNER_KINDS.iter().map(|k| k.to_string()));
    l.extend(OWNER_KINDS.iter().map(|k| format!("dst_{k}")));
    l
}

const POLICY_LABELS: &str = "srv_kind, srv_name, route_kind, route_name, authz_kind, authz_name";

/// The queries asked, as (family name the answers are read as, PromQL).
pub fn queries(window: Duration) -> Vec<(&'static str, String)> {
    let w = format!("{}s", window.as_secs().max(1));
    let edge = edge_labels().join(", ");
    let increase = |name: &str, by: &str| format!("sum by ({by}) (increase({name}[{w}]))");
    vec![
        ("request_total", increase("request_total", &edge)),
        (
            "response_total",
            increase("response_total", &format!("{edge}, classification")),
        ),
        (
            "response_latency_ms_bucket",
            increase("response_latency_ms_bucket", &format!("{edge}, le")),
        ),
        ("tcp_open_total", increase("tcp_open_total", &edge)),
        (
            "tcp_open_connections",
            format!("sum by ({edge}) (tcp_open_connections)"),
        ),
        (
            "tcp_read_bytes_total",
            increase("tcp_read_bytes_total", &edge),
        ),
        (
            "tcp_write_bytes_total",
            increase("tcp_write_bytes_total", &edge),
        ),
        (
            "inbound_http_authz_allow_total",
            increase("inbound_http_authz_allow_total", POLICY_LABELS),
        ),
        (
            "inbound_http_authz_deny_total",
            increase(
                "inbound_http_authz_deny_total",
                &format!("{edge}, {POLICY_LABELS}"),
            ),
        ),
        (
            "inbound_http_route_not_found_total",
            increase("inbound_http_route_not_found_total", POLICY_LABELS),
        ),
        (
            "inbound_tcp_authz_allow_total",
            increase("inbound_tcp_authz_allow_total", POLICY_LABELS),
        ),
        (
            "inbound_tcp_authz_deny_total",
            increase("inbound_tcp_authz_deny_total", POLICY_LABELS),
        ),
    ]
}

/// Asks every query of `queries(window)` of the server at `base` (e.g.
/// `http://prometheus:9090`), one after the other.
pub async fn query_window(base: &str, window: Duration) -> Result<Scrape, SourceError> {
    let base = base.trim_end_matches('/');
    fetch::parse_url(base)?;
    let mut samples = Vec::new();
    for (name, promql) in queries(window) {
        let url = format!("{base}/api/v1/query?query={}", percent_encode(&promql));
        // Errors name the server, not the long query URL.
        let (status, body) =
            fetch::get_any(&url, "application/json")
                .await
                .map_err(|e| match e {
                    SourceError::Fetch { message, .. } => SourceError::Fetch {
                        url: base.to_string(),
                        message: format!("query for {name}: {message}"),
                    },
                    other => other,
                })?;
        samples.extend(parse_vector(base, status.as_u16(), &body, name)?);
    }
    Ok(Scrape {
        workload: None,
        instance: base.to_string(),
        samples,
    })
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: std::collections::BTreeMap<String, String>,
    /// `[unix seconds, "value"]`.
    value: (f64, String),
}

/// Reads an instant-vector answer as samples named `name`. `url` names the server in
/// errors.
pub fn parse_vector(
    url: &str,
    status: u16,
    body: &str,
    name: &str,
) -> Result<Vec<Sample>, SourceError> {
    let err = |message: String| SourceError::Api {
        url: url.to_string(),
        message,
    };
    let answer: Answer = serde_json::from_str(body).map_err(|e| {
        if status == 200 {
            err(format!("the answer is not the query API's JSON: {e}"))
        } else {
            let first = body.lines().next().unwrap_or("");
            err(format!(
                "HTTP {status}: {}",
                first.chars().take(200).collect::<String>()
            ))
        }
    })?;
    if answer.status != "success" {
        return Err(err(format!(
            "the query for {name} failed ({}): {}",
            answer.error_type.as_deref().unwrap_or("error"),
            answer.error.as_deref().unwrap_or("no reason given")
        )));
    }
    let data = answer
        .data
        .ok_or_else(|| err(format!("the answer for {name} has no data")))?;
    if data.result_type != "vector" {
        return Err(err(format!(
            "the answer for {name} is a {}, not a vector",
            data.result_type
        )));
    }
    data.result
        .into_iter()
        .map(|s| {
            let value = s.value.1.parse::<f64>().map_err(|_| {
                err(format!(
                    "the answer for {name} has the value `{}`, not a number",
                    s.value.1
                ))
            })?;
            Ok(Sample {
                name: name.to_string(),
                labels: s.metric.into_iter().collect(),
                value,
                timestamp_ms: Some((s.value.0 * 1000.0) as i64),
                line: 0,
            })
        })
        .collect()
}

/// URL query encoding: everything but unreserved characters as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_answer_becomes_samples() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"direction":"inbound","client_id":"web.shop"},"value":[1700000000.5,"12.5"]},
            {"metric":{},"value":[1700000000.5,"NaN"]}]}}"#;
        let s = parse_vector("http://p:9090", 200, body, "response_total").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "response_total");
        assert_eq!(s[0].label("client_id"), Some("web.shop"));
        assert_eq!(s[0].value, 12.5);
        assert_eq!(s[0].timestamp_ms, Some(1_700_000_000_500));
        assert!(s[1].value.is_nan());
    }

    #[test]
    fn api_errors_say_what_prometheus_said() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        let e = parse_vector("http://p:9090", 400, body, "request_total")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "http://p:9090: the query for request_total failed (bad_data): parse error at char 5"
        );
        let e = parse_vector("http://p:9090", 404, "404 page not found\n", "x")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "http://p:9090: HTTP 404: 404 page not found");
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_vector("u", 200, matrix, "x").is_err());
        let bad = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#;
        assert!(
            parse_vector("u", 200, bad, "x")
                .unwrap_err()
                .to_string()
                .contains("`x`")
        );
    }

    #[test]
    fn queries_sum_increases_by_the_edge_labels() {
        let q = queries(Duration::from_secs(60));
        let (_, response) = q.iter().find(|(n, _)| *n == "response_total").unwrap();
        assert!(response.starts_with("sum by (direction, namespace, instance,"));
        assert!(response.ends_with(", classification) (increase(response_total[60s]))"));
        assert!(response.contains("dst_deployment"));
        assert_eq!(
            percent_encode("a b{c=\"d\"}[1m]"),
            "a%20b%7Bc%3D%22d%22%7D%5B1m%5D"
        );
    }
}
