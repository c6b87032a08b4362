//! Linkerd's policy resources as typed values, read with serde from their YAML. Only the fields
//! that affect evaluation or validation are typed; Linkerd's own kinds reject unknown spec
//! fields (a typo there silently changes who is allowed), routes accept them (`backendRefs`,
//! `timeouts`, ... matter to outbound traffic, not to inbound policy).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::contract::SchemaContractSpec;

pub const LINKERD_GROUP: &str = "policy.linkerd.io";
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
pub const MESHLENS_GROUP: &str = "policy.meshlens.io";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    /// Missing means `default`, as `kubectl apply` without `-n` would do.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 (`2026-01-02T03:04:05Z`); orders overlapping Servers and routes.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

impl Metadata {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelExpression {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector; an empty selector selects everything, as in
    /// Kubernetes. Unknown operators select nothing (validation reports them).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// A port given as a number or as a container-port name (Kubernetes' IntOrString).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// Kept as written (even out of range) so validation can quote it.
    Number(i64),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortRef, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRef, E> {
                Ok(PortRef::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRef, E> {
                Ok(PortRef::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRef, E> {
                Ok(PortRef::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ProxyProtocol {
    #[default]
    #[serde(rename = "unknown")]
    Unknown,
    #[serde(rename = "HTTP/1")]
    Http1,
    #[serde(rename = "HTTP/2")]
    Http2,
    #[serde(rename = "gRPC")]
    Grpc,
    #[serde(rename = "opaque")]
    Opaque,
    #[serde(rename = "TLS")]
    Tls,
}

impl ProxyProtocol {
    /// Whether the proxy parses requests on this port (and so routes apply).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            ProxyProtocol::Http1 | ProxyProtocol::Http2 | ProxyProtocol::Grpc
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Unknown => "unknown",
            ProxyProtocol::Http1 => "HTTP/1",
            ProxyProtocol::Http2 => "HTTP/2",
            ProxyProtocol::Grpc => "gRPC",
            ProxyProtocol::Opaque => "opaque",
            ProxyProtocol::Tls => "TLS",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSpec {
    #[serde(default)]
    pub pod_selector: Option<LabelSelector>,
    #[serde(default)]
    pub external_workload_selector: Option<LabelSelector>,
    pub port: PortRef,
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    #[serde(default)]
    pub access_policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub cidr: String,
    #[serde(default)]
    pub except: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountRef {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshTlsClient {
    #[serde(default, rename = "unauthenticatedTLS")]
    pub unauthenticated_tls: bool,
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountRef>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSpec {
    #[serde(default)]
    pub networks: Option<Vec<Network>>,
    #[serde(default)]
    pub unauthenticated: bool,
    #[serde(default, rename = "meshTLS")]
    pub mesh_tls: Option<MeshTlsClient>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerAuthorizationSpec {
    pub server: ServerRef,
    pub client: ClientSpec,
}

/// A reference to another object (`targetRef`, `requiredAuthenticationRefs`, `identityRefs`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl ObjectRef {
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// Kind names are compared case-insensitively, as Linkerd's controller does.
    pub fn is(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicySpec {
    pub target_ref: ObjectRef,
    #[serde(default)]
    pub required_authentication_refs: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshTlsAuthenticationSpec {
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub identity_refs: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkAuthenticationSpec {
    pub networks: Vec<Network>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl ParentRef {
    /// Inbound policy only follows parents that are Linkerd Servers.
    pub fn is_server(&self) -> bool {
        self.group.as_deref() == Some(LINKERD_GROUP)
            && self
                .kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("Server"))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PathMatch {
    #[serde(default = "prefix", rename = "type")]
    pub kind: String,
    #[serde(default = "root")]
    pub value: String,
}

fn prefix() -> String {
    "PathPrefix".into()
}

fn root() -> String {
    "/".into()
}

fn exact() -> String {
    "Exact".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValueMatch {
    #[serde(default = "exact", rename = "type")]
    pub kind: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    #[serde(default)]
    pub path: Option<PathMatch>,
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
    #[serde(default)]
    pub query_params: Vec<ValueMatch>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcMethodMatch {
    #[serde(default = "exact", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteMatch {
    #[serde(default)]
    pub method: Option<GrpcMethodMatch>,
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteRule {
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// The typed body of one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Server(ServerSpec),
    ServerAuthorization(ServerAuthorizationSpec),
    AuthorizationPolicy(AuthorizationPolicySpec),
    MeshTlsAuthentication(MeshTlsAuthenticationSpec),
    NetworkAuthentication(NetworkAuthenticationSpec),
    HttpRoute(HttpRouteSpec),
    GrpcRoute(GrpcRouteSpec),
    SchemaContract(SchemaContractSpec),
    /// A core `v1 Namespace`: only its annotations matter (the default inbound policy).
    Namespace,
}

impl Spec {
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Server(_) => "Server",
            Spec::ServerAuthorization(_) => "ServerAuthorization",
            Spec::AuthorizationPolicy(_) => "AuthorizationPolicy",
            Spec::MeshTlsAuthentication(_) => "MeshTLSAuthentication",
            Spec::NetworkAuthentication(_) => "NetworkAuthentication",
            Spec::HttpRoute(_) => "HTTPRoute",
            Spec::GrpcRoute(_) => "GRPCRoute",
            Spec::SchemaContract(_) => "SchemaContract",
            Spec::Namespace => "Namespace",
        }
    }
}

/// One loaded resource: its `apiVersion`, metadata and typed spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub api_version: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace()
    }

    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// Creation order as Linkerd uses it: timestamp, then name. A resource without a
    /// timestamp sorts after every timestamped one (it is as if created on load).
    pub fn age_key(&self) -> (bool, &str, &str) {
        let ts = self.metadata.creation_timestamp.as_deref();
        (ts.is_none(), ts.unwrap_or(""), self.name())
    }
}
