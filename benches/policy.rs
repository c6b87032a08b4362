//! One policy decision for a workload with 50 Servers, 200 routes and 500 authorizations:
//! the index (resolved once) against a naive evaluation that resolves the same resources
//! for the target workload on every decision, in the same run.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use meshlens::policy::authz::ClientTls;
use meshlens::policy::defaults::Settings;
use meshlens::policy::eval::{HttpRequest, Request, Verdict};
use meshlens::policy::index::Index;
use meshlens::policy::load::{PolicySet, load_str};
use meshlens::policy::workload::{Workload, parse_workloads};

const SERVERS: usize = 50;
const ROUTES_PER_SERVER: usize = 4;
/// 400 on routes (2 per route) + 100 on servers (2 per server) = 500.
const AUTHZ_PER_ROUTE: usize = 2;
const AUTHZ_PER_SERVER: usize = 2;

fn policies() -> String {
    let mut y = String::new();
    for s in 0..SERVERS {
        y += &format!(
            "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: srv-{s}, namespace: bench}}\n\
             spec: {{podSelector: {{matchLabels: {{app: target}}}}, port: {}, proxyProtocol: HTTP/1}}\n",
            8000 + s
        );
        for a in 0..AUTHZ_PER_SERVER {
            y += &format!(
                "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: srv-{s}-authz-{a}, namespace: bench}}\n\
                 spec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: srv-{s}}}\n  \
                 requiredAuthenticationRefs: [{{kind: ServiceAccount, name: server-caller-{a}}}]\n"
            );
        }
        for r in 0..ROUTES_PER_SERVER {
            y += &format!(
                "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: route-{s}-{r}, namespace: bench}}\n\
                 spec:\n  parentRefs: [{{group: policy.linkerd.io, kind: Server, name: srv-{s}}}]\n  rules:\n  - matches:\n    \
                 - {{method: GET, path: {{type: PathPrefix, value: /api/v{r}/items}}}}\n    - {{method: POST, path: {{type: Exact, value: /api/v{r}/items}}}}\n"
            );
            for a in 0..AUTHZ_PER_ROUTE {
                y += &format!(
                    "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {{name: callers-{s}-{r}-{a}, namespace: bench}}\n\
                     spec: {{identities: ['caller-{a}.bench.serviceaccount.identity.linkerd.cluster.local', '*.ns{r}.serviceaccount.identity.linkerd.cluster.local']}}\n\
                     ---\napiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {{name: nets-{s}-{r}-{a}, namespace: bench}}\n\
                     spec: {{networks: [{{cidr: 10.0.0.0/8, except: [10.99.0.0/16]}}]}}\n\
                     ---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: route-{s}-{r}-authz-{a}, namespace: bench}}\n\
                     spec:\n  targetRef: {{group: gateway.networking.k8s.io, kind: HTTPRoute, name: route-{s}-{r}}}\n  requiredAuthenticationRefs:\n  \
                     - {{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: callers-{s}-{r}-{a}}}\n  \
                     - {{group: policy.linkerd.io, kind: NetworkAuthentication, name: nets-{s}-{r}-{a}}}\n"
                );
            }
        }
    }
    y
}

fn setup() -> (PolicySet, Vec<Workload>) {
    let mut set = PolicySet::default();
    let mut errors = Vec::new();
    load_str(Path::new("bench.yaml"), &policies(), &mut set, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut ws = String::from(
        "- {namespace: bench, name: target, serviceAccount: target, labels: {app: target}}\n",
    );
    for i in 0..20 {
        ws += &format!("- {{namespace: bench, name: other-{i}, labels: {{app: other}}}}\n");
    }
    (set, parse_workloads(Path::new("w.yaml"), &ws).unwrap())
}

/// A call to the last server's last route, allowed by the server-level authorization, so the
/// route's two authorizations and the first server-level one are tried and miss first.
fn request() -> Request {
    Request {
        namespace: "bench".into(),
        workload: "target".into(),
        port: 8000 + SERVERS as u16 - 1,
        client_ip: "10.1.2.3".parse().unwrap(),
        tls: ClientTls::Mtls(Some(
            "server-caller-1.bench.serviceaccount.identity.linkerd.cluster.local".into(),
        )),
        http: Some(HttpRequest {
            method: "GET".into(),
            path: format!("/api/v{}/items/42?page=2", ROUTES_PER_SERVER - 1),
            host: Some("target.bench.svc.cluster.local:8049".into()),
            headers: vec![("content-type".into(), "application/json".into())],
            grpc: false,
        }),
    }
}

fn decision(c: &mut Criterion) {
    let (set, workloads) = setup();
    let settings = Settings::default();
    let index = Index::build(&set, &workloads, &settings);
    let req = request();
    let d = index.evaluate(&req).unwrap();
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.authorization.unwrap().name, "srv-49-authz-1");
    assert_eq!(d.tried.len(), 4);

    let mut g = c.benchmark_group("policy_decision");
    g.bench_function("indexed", |b| {
        b.iter(|| {
            let d = index.evaluate(black_box(&req)).unwrap();
            black_box(d.verdict)
        })
    });
    let target = &workloads[..1];
    g.bench_function("naive_resolve_per_decision", |b| {
        b.iter(|| {
            let index = Index::build(black_box(&set), target, &settings);
            let d = index.evaluate(black_box(&req)).unwrap();
            black_box(d.verdict)
        })
    });
    g.finish();
    c.bench_function("policy_index_build_21_workloads", |b| {
        b.iter(|| black_box(Index::build(black_box(&set), &workloads, &settings)))
    });
}

criterion_group!(benches, decision);
criterion_main!(benches);
