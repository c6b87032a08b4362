//! Workloads as policy sees them: namespace, name, service account, labels, named ports and
//! annotations — the same shape the sandbox manifest uses. A workloads file is a YAML list.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::defaults::{DEFAULT_POLICY_ANNOTATION, DefaultPolicy};
use super::error::PolicyError;
use super::ids::IdentityDomain;
use super::load::read_file;
use super::resources::PortRef;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    /// Kubernetes' default when a pod names none.
    #[serde(default = "default_sa")]
    pub service_account: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<NamedPort>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn default_sa() -> String {
    "default".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedPort {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u16,
}

impl Workload {
    pub fn identity(&self, domain: &IdentityDomain) -> String {
        domain.service_account(&self.namespace, &self.service_account)
    }

    /// The ports a Server's `port` means on this workload: a number as is (containers may
    /// listen on undeclared ports), a name every declared port with that name.
    pub fn resolve_port(&self, port: &PortRef) -> Vec<u16> {
        match port {
            PortRef::Number(n) => u16::try_from(*n).into_iter().filter(|p| *p > 0).collect(),
            PortRef::Name(name) => self
                .ports
                .iter()
                .filter(|p| p.name.as_deref() == Some(name))
                .map(|p| p.port)
                .collect(),
        }
    }

    /// The annotation on the workload, else on its namespace, else the cluster default.
    /// An unparsable annotation is ignored, as the proxy injector would fall back.
    pub fn default_policy(
        &self,
        namespace_annotations: Option<&BTreeMap<String, String>>,
        cluster: DefaultPolicy,
    ) -> DefaultPolicy {
        let annotated = |a: &BTreeMap<String, String>| {
            a.get(DEFAULT_POLICY_ANNOTATION)
                .and_then(|v| v.parse::<DefaultPolicy>().ok())
        };
        annotated(&self.annotations)
            .or_else(|| namespace_annotations.and_then(annotated))
            .unwrap_or(cluster)
    }
}

/// Reads a workloads file: a YAML list of workloads.
pub fn load_workloads(path: &Path) -> Result<Vec<Workload>, PolicyError> {
    let text = read_file(path)?;
    parse_workloads(path, &text)
}

pub fn parse_workloads(path: &Path, text: &str) -> Result<Vec<Workload>, PolicyError> {
    let err = |message: String| PolicyError::Workloads {
        path: path.to_path_buf(),
        message,
    };
    // serde_yaml_ng's message already carries the path and the line.
    let list: Vec<Workload> = serde_yaml_ng::from_str(text)
        .map_err(|e| err(e.to_string().trim_start_matches('.').to_string()))?;
    for (i, w) in list.iter().enumerate() {
        if list[..i]
            .iter()
            .any(|o| o.namespace == w.namespace && o.name == w.name)
        {
            return Err(err(format!(
                "[{i}]: workload {}/{} is listed twice",
                w.namespace, w.name
            )));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sandbox_shape_and_resolves_named_ports() {
        let ws = parse_workloads(
            Path::new("w.yaml"),
            "- {namespace: shop, name: orders, serviceAccount: orders, labels: {app: orders},\n   \
             ports: [{name: http, port: 8080}, {name: admin, port: 9990}],\n   \
             annotations: {config.linkerd.io/default-inbound-policy: deny}}\n- {namespace: shop, name: web}\n",
        )
        .unwrap();
        assert_eq!(ws[0].resolve_port(&PortRef::Name("http".into())), [8080]);
        assert_eq!(ws[0].resolve_port(&PortRef::Number(5432)), [5432]);
        assert!(ws[0].resolve_port(&PortRef::Name("grpc".into())).is_empty());
        assert_eq!(ws[1].service_account, "default");
        assert_eq!(
            ws[1].identity(&IdentityDomain::default()),
            "default.shop.serviceaccount.identity.linkerd.cluster.local"
        );
    }

    #[test]
    fn workload_annotation_beats_namespace_beats_cluster() {
        let ws = parse_workloads(
            Path::new("w.yaml"),
            "- {namespace: shop, name: a, annotations: {config.linkerd.io/default-inbound-policy: deny}}\n\
             - {namespace: shop, name: b}\n",
        )
        .unwrap();
        let ns: BTreeMap<_, _> =
            [(DEFAULT_POLICY_ANNOTATION.to_string(), "audit".to_string())].into();
        let cluster = DefaultPolicy::AllUnauthenticated;
        assert_eq!(
            ws[0].default_policy(Some(&ns), cluster),
            DefaultPolicy::Deny
        );
        assert_eq!(
            ws[1].default_policy(Some(&ns), cluster),
            DefaultPolicy::Audit
        );
        assert_eq!(ws[1].default_policy(None, cluster), cluster);
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let e = parse_workloads(
            Path::new("w.yaml"),
            "- {namespace: shop, name: a, ports: [{port: http}]}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("w.yaml: [0].ports[0].port: invalid type"),
            "{e}"
        );
        assert!(e.ends_with("at line 1 column 45"), "{e}");
        let e = parse_workloads(Path::new("w.yaml"), "{a: 1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w.yaml: "), "{e}");
    }
}
