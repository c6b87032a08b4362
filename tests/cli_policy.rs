//! `meshlens policy lint|eval` run as CI and people run them: exit codes, every error listed
//! with file/document/field, warnings after a rename, and the decision's JSON and text forms.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/policy")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn meshlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";

fn eval(extra: &[&str]) -> Output {
    let (policies, workloads) = (data("storefront"), data("workloads.yaml"));
    let mut args = vec![
        "policy",
        "eval",
        "--policies",
        &policies,
        "--workloads",
        &workloads,
    ];
    args.extend_from_slice(extra);
    meshlens(&args)
}

fn eval_json(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = extra.to_vec();
    args.push("--json");
    let out = eval(&args);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

#[test]
fn lint_passes_the_storefront() {
    let out = meshlens(&[
        "policy",
        "lint",
        &data("storefront"),
        "--workloads",
        &data("workloads.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out).trim(),
        "23 resources, 1 contracts: 0 errors, 0 warnings"
    );
}

#[test]
fn lint_lists_every_error_with_file_document_and_field() {
    let out = meshlens(&["policy", "lint", &data("broken")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    let expected = [
        ("bad-yaml.yaml:4: document 1", "not valid YAML"),
        (
            "mixed.yaml:1: document 1",
            "Server orders-http: spec.podSelector: exactly one of podSelector and externalWorkloadSelector",
        ),
        (
            "mixed.yaml:1: document 1",
            "Server orders-http: spec.accessPolicy: unknown default policy `allow-all`",
        ),
        (
            "mixed.yaml:10: document 2",
            "ServerAuthorization everyone: spec.client: `unauthenticated` and `meshTLS` cannot both be set",
        ),
        (
            "mixed.yaml:19: document 3",
            "AuthorizationPolicy cross-ns: spec.targetRef.namespace: an AuthorizationPolicy may only target resources in its own namespace",
        ),
        (
            "mixed.yaml:19: document 3",
            "spec.requiredAuthenticationRefs: only one MeshTLSAuthentication may be set",
        ),
        (
            "mixed.yaml:19: document 3",
            "spec.requiredAuthenticationRefs[0].name: MeshTLSAuthentication shop/a does not exist",
        ),
        (
            "mixed.yaml:19: document 3",
            "spec.requiredAuthenticationRefs[1].name: MeshTLSAuthentication shop/b does not exist",
        ),
        (
            "mixed.yaml:28: document 4",
            "NetworkAuthentication nodes: spec.networks[0].except[0]: 192.168.0.0/16 is not inside 10.0.0.0/8",
        ),
    ];
    assert_eq!(errors.len(), expected.len(), "{text}");
    for (line, (at, what)) in errors.iter().zip(expected) {
        assert!(
            line.contains(at) && line.contains(what),
            "{line}\nwanted {at} … {what}"
        );
    }
    assert!(text.ends_with("4 resources, 0 contracts: 9 errors, 0 warnings\n"));
}

#[test]
fn lint_warns_after_a_namespace_rename() {
    let out = meshlens(&[
        "policy",
        "lint",
        &data("storefront"),
        "--workloads",
        &data("workloads-renamed.yaml"),
    ]);
    // Still valid Linkerd, so exit 0 — but nothing matches any more.
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for expected in [
        "web.yaml:1: document 1: Server web-http: spec.podSelector: selects no pod: no workload in namespace `shop`",
        "orders.yaml:1: document 1: Server orders-http: spec.podSelector: selects no pod",
        "MeshTLSAuthentication storefront-callers: spec.identities[0]: identity web.shop.serviceaccount.identity.linkerd.cluster.local matches no workload: none runs as service account `web` in namespace `shop`",
        "MeshTLSAuthentication storefront-callers: spec.identityRefs[0]: identity *.backoffice.serviceaccount.identity.linkerd.cluster.local matches no workload",
        "AuthorizationPolicy pg-orders-only: spec.requiredAuthenticationRefs[0]: identity orders.shop",
        "SchemaContract orders-events: spec.subjects[0].producers.serviceAccounts[0]",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(text.ends_with("0 errors, 11 warnings\n"), "{text}");
}

#[test]
fn lint_usage_errors_exit_2_in_one_line() {
    let out = meshlens(&[
        "policy",
        "lint",
        &data("storefront"),
        "--workloads",
        &data("storefront/web.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("web.yaml"),
        "{err}"
    );
    let missing = meshlens(&["policy", "lint", "/nonexistent/policies"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("cannot read /nonexistent/policies"));
}

#[test]
fn eval_json_has_exactly_the_documented_shape() {
    let (code, j) = eval_json(&[
        "--to",
        "shop/orders:http",
        "--client-id",
        WEB,
        "--client-ip",
        "10.42.1.5",
        "--method",
        "GET",
        "--path",
        "/v1/orders/42",
    ]);
    assert_eq!(code, Some(0));
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "decision",
            "http_status",
            "grpc_status",
            "server",
            "route",
            "authorization",
            "reason",
            "tried"
        ]
    );
    assert_eq!(j["decision"], "allow");
    assert_eq!(j["http_status"], serde_json::Value::Null);
    assert_eq!(
        j["server"],
        serde_json::json!({"kind": "server", "name": "orders-http"})
    );
    assert_eq!(
        j["route"],
        serde_json::json!({"kind": "HTTPRoute", "name": "orders-read"})
    );
    assert_eq!(
        j["authorization"],
        serde_json::json!({"kind": "authorizationpolicy", "name": "orders-read-authz"})
    );
    assert_eq!(j["tried"][0]["matched"], true);
    assert_eq!(j["tried"].as_array().unwrap().len(), 1);
}

#[test]
fn eval_denies_no_routes_and_audits_as_linkerd_does() {
    let base = ["--client-ip", "10.42.1.5"];
    // Unmeshed curl: 403 on the read route, after trying its policy and localhost.
    let (code, j) = eval_json(
        &[
            &[
                "--to",
                "shop/orders:8080",
                "--unauthenticated",
                "--path",
                "/v1/orders",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(
        (code, &j["decision"], &j["http_status"]),
        (Some(1), &"deny".into(), &403.into())
    );
    assert_eq!(j["authorization"], serde_json::Value::Null);
    let tried: Vec<_> = j["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tried, ["orders-read-authz", "localhost"]);
    // DELETE has no route: 404.
    let (_, j) = eval_json(
        &[
            &[
                "--to",
                "shop/orders:http",
                "--client-id",
                WEB,
                "--method",
                "DELETE",
                "--path",
                "/v1/orders/1",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(
        (&j["decision"], &j["http_status"], &j["route"]),
        (&"no_route".into(), &404.into(), &serde_json::Value::Null)
    );
    // gRPC: wrong caller is status 7 in a 200; unknown method NOT_FOUND.
    let (_, j) = eval_json(
        &[
            &[
                "--to",
                "shop/payments:grpc",
                "--client-id",
                WEB,
                "--grpc",
                "--path",
                "/shop.payments.v1.Payments/Charge",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(
        (&j["http_status"], &j["grpc_status"]),
        (&200.into(), &7.into())
    );
    let (_, j) = eval_json(
        &[
            &[
                "--to",
                "shop/payments:grpc",
                "--client-id",
                WEB,
                "--grpc",
                "--path",
                "/shop.payments.v1.Payments/Void",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(
        (&j["decision"], &j["grpc_status"]),
        (&"no_route".into(), &5.into())
    );
    // Postgres in audit mode: let through, labelled audit.
    let (code, j) = eval_json(
        &[
            &["--to", "shop/postgres:5432", "--client-id", WEB],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        j["authorization"],
        serde_json::json!({"kind": "default", "name": "audit"})
    );
    assert_eq!(j["route"], serde_json::Value::Null);
    // A port without Server: the namespace's cluster-authenticated default.
    let (_, j) = eval_json(
        &[
            &["--to", "shop/orders:admin", "--client-id", WEB],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(
        j["server"],
        serde_json::json!({"kind": "default", "name": "cluster-authenticated"})
    );
    assert_eq!(j["authorization"]["name"], "cluster-authenticated");
    // ...overridden by the cluster networks flag.
    let (code, _) = eval_json(
        &[
            &[
                "--to",
                "shop/orders:admin",
                "--client-id",
                WEB,
                "--cluster-networks",
                "192.168.0.0/16",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(code, Some(1));
    // The workload annotation (deny) beats the cluster default.
    let (code, j) = eval_json(
        &[
            &[
                "--to",
                "backoffice/reports:8080",
                "--client-id",
                WEB,
                "--default-policy",
                "all-unauthenticated",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!((code, &j["server"]["name"]), (Some(1), &"deny".into()));
}

#[test]
fn eval_text_output_says_the_same() {
    let out = eval(&[
        "--to",
        "shop/orders:http",
        "--unauthenticated",
        "--client-ip",
        "10.1.0.9",
        "--path",
        "/ready",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "decision:      allow");
    assert_eq!(lines[1], "server:        server/orders-http (HTTP/1)");
    assert_eq!(lines[2], "route:         HTTPRoute/orders-probes");
    assert_eq!(
        lines[3],
        "authorization: authorizationpolicy/orders-probes-authz"
    );
    assert!(lines[4].starts_with("reason:        GET /ready authorized by"));
    assert_eq!(lines[5], "tried:");
    assert!(lines[6].starts_with("  1. match authorizationpolicy/orders-probes-authz: client 10.1.0.9 is in 10.0.0.0/8 except 10.42.0.0/16"));
}

fn eval_catalog(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let (policies, workloads) = (data("storefront"), data("workloads-probes.yaml"));
    let mut args = vec![
        "policy",
        "eval",
        "--policies",
        &policies,
        "--workloads",
        &workloads,
        "--unauthenticated",
        "--client-ip",
        "10.1.0.9",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = meshlens(&args);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

#[test]
fn eval_probe_route_and_probe_networks() {
    let (code, j) = eval_catalog(&["--to", "shop/catalog:http", "--path", "/ready"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        j["server"],
        serde_json::json!({"kind": "default", "name": "all-unauthenticated"})
    );
    assert_eq!(
        j["route"],
        serde_json::json!({"kind": "default", "name": "probe"})
    );
    assert_eq!(
        j["authorization"],
        serde_json::json!({"kind": "default", "name": "probe"})
    );
    let (_, j) = eval_catalog(&["--to", "shop/catalog:8080", "--path", "/other"]);
    assert_eq!(j["route"]["name"], "default");
    assert_eq!(j["authorization"]["name"], "all-unauthenticated");
    // Outside the probe networks the probe authorization is tried and misses.
    let (code, j) = eval_catalog(&[
        "--to",
        "shop/catalog:http",
        "--path",
        "/live",
        "--probe-networks",
        "192.168.0.0/16, fd00::/8",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(j["route"]["name"], "probe");
    assert_eq!(j["tried"][0]["name"], "probe");
    assert_eq!(j["tried"][0]["matched"], false);
    assert_eq!(j["authorization"]["name"], "all-unauthenticated");
    let out = meshlens(&[
        "policy",
        "eval",
        "--policies",
        &data("storefront"),
        "--workloads",
        &data("workloads-probes.yaml"),
        "--to",
        "shop/catalog:http",
        "--unauthenticated",
        "--client-ip",
        "10.1.0.9",
        "--probe-networks",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--probe-networks"));
}

#[test]
fn eval_port_annotations_require_identity_and_opaque() {
    let (code, j) = eval_catalog(&["--to", "shop/catalog:tls", "--path", "/"]);
    assert_eq!(code, Some(1));
    assert_eq!(j["server"]["name"], "all-authenticated");
    assert_eq!(j["http_status"], 403);
    let (code, j) = eval_catalog(&["--to", "shop/catalog:pg", "--path", "/"]);
    assert_eq!(code, Some(0));
    assert_eq!(j["route"], serde_json::Value::Null);
    assert!(
        j["reason"]
            .as_str()
            .unwrap()
            .contains("the connection authorized"),
        "{j}"
    );
}

#[test]
fn eval_usage_errors_exit_2() {
    for extra in [
        &[
            "--to",
            "shop/nobody:80",
            "--unauthenticated",
            "--client-ip",
            "10.0.0.1",
        ][..],
        &[
            "--to",
            "shop/orders:metrics",
            "--unauthenticated",
            "--client-ip",
            "10.0.0.1",
        ],
        &[
            "--to",
            "orders",
            "--unauthenticated",
            "--client-ip",
            "10.0.0.1",
        ],
        &[
            "--to",
            "shop/orders:80",
            "--unauthenticated",
            "--client-ip",
            "10.0.0.1",
            "--default-policy",
            "allow",
        ],
    ] {
        let out = eval(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
    }
    let broken: PathBuf = data("broken").into();
    let out = meshlens(&[
        "policy",
        "eval",
        "--policies",
        broken.to_str().unwrap(),
        "--workloads",
        &data("workloads.yaml"),
        "--to",
        "shop/orders:80",
        "--unauthenticated",
        "--client-ip",
        "10.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-yaml.yaml:4: document 1: not valid YAML") && err.contains("policy lint"),
        "{err}"
    );
}
