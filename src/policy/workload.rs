//! Workloads as policy sees them: namespace, name, service account, labels, named ports,
//! annotations and HTTP probes — the sandbox manifest's shape plus `probes`, which Linkerd
//! reads from the pod's liveness/readiness/startup probes to authorize kubelet on ports no
//! route covers. A workloads file is a YAML list.
//!
//! Annotations read here: `config.linkerd.io/default-inbound-policy` (workload, else
//! namespace), `config.linkerd.io/proxy-require-identity-inbound-ports` (workload) and
//! `config.linkerd.io/opaque-ports` (workload, else namespace). Port lists are comma-separated
//! ports and `low-high` ranges; the opaque list may also name declared ports, which the proxy
//! injector resolves. A list with an invalid entry is ignored as a whole, as Linkerd's policy
//! controller logs and ignores it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::defaults::{
    DEFAULT_POLICY_ANNOTATION, DefaultPolicy, OPAQUE_PORTS_ANNOTATION,
    REQUIRE_IDENTITY_PORTS_ANNOTATION,
};
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
    /// The HTTP probes (liveness, readiness, startup) of the pod's containers: Linkerd adds a
    /// `probe` route for their paths on a port whose Server has no routes of its own.
    #[serde(default)]
    pub probes: Vec<Probe>,
}

/// One HTTP probe: `httpGet.path` and `httpGet.port` (a number or a declared port name).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub path: String,
    pub port: PortRef,
}

/// Ports from a ports annotation: single ports and inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses `8080,9000-9010` (spaces allowed, empty items skipped). Ports are 1–65535 and a
/// range's low end may not exceed its high end. `named` resolves port names (the opaque-ports
/// annotation accepts them); pass an empty slice where only numbers are valid.
pub fn parse_port_set(list: &str, named: &[NamedPort]) -> Result<PortSet, String> {
    let number = |s: &str| match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("`{}` is not a port (1-65535)", s.trim())),
    };
    let mut set = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((lo, hi)) = item.split_once('-') {
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo > hi {
                return Err(format!("`{item}`: the range is empty"));
            }
            set.push((lo, hi));
        } else if item.bytes().all(|b| b.is_ascii_digit()) {
            let p = number(item)?;
            set.push((p, p));
        } else {
            let ports: Vec<_> = named
                .iter()
                .filter(|p| p.name.as_deref() == Some(item))
                .map(|p| (p.port, p.port))
                .collect();
            if ports.is_empty() {
                return Err(format!(
                    "`{item}` is neither a port nor a declared port name"
                ));
            }
            set.extend(ports);
        }
    }
    Ok(PortSet(set))
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

    /// The exact paths of the HTTP probes on `port`, sorted and without duplicates.
    pub fn probe_paths(&self, port: u16) -> Vec<String> {
        let mut paths: Vec<String> = self
            .probes
            .iter()
            .filter(|p| self.resolve_port(&p.port).contains(&port))
            .map(|p| p.path.clone())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    /// The ports in `probes`, each once (sorted).
    pub fn probe_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .probes
            .iter()
            .flat_map(|p| self.resolve_port(&p.port))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// `proxy-require-identity-inbound-ports`, read from the workload only (Linkerd reads
    /// it from the pod); numbers and ranges only.
    pub fn require_identity_ports(&self) -> PortSet {
        self.annotations
            .get(REQUIRE_IDENTITY_PORTS_ANNOTATION)
            .and_then(|v| parse_port_set(v, &[]).ok())
            .unwrap_or_default()
    }

    /// `opaque-ports` from the workload, else from its namespace (the injector copies the
    /// namespace's onto pods that have none). Names resolve against the declared ports.
    pub fn opaque_ports(
        &self,
        namespace_annotations: Option<&BTreeMap<String, String>>,
    ) -> PortSet {
        self.annotations
            .get(OPAQUE_PORTS_ANNOTATION)
            .or_else(|| namespace_annotations.and_then(|a| a.get(OPAQUE_PORTS_ANNOTATION)))
            .and_then(|v| parse_port_set(v, &self.ports).ok())
            .unwrap_or_default()
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
    fn probes_resolve_named_and_numbered_ports() {
        let ws = parse_workloads(
            Path::new("w.yaml"),
            "- namespace: shop\n  name: a\n  ports: [{name: http, port: 8080}, {name: admin, port: 9990}]\n  \
             probes: [{path: /ready, port: http}, {path: /live, port: 8080}, {path: /ready, port: 8080},\n           \
             {path: /metrics, port: 9990}, {path: /x, port: nope}]\n",
        )
        .unwrap();
        let w = &ws[0];
        assert_eq!(w.probe_paths(8080), ["/live", "/ready"]);
        assert_eq!(w.probe_paths(9990), ["/metrics"]);
        assert!(w.probe_paths(1234).is_empty());
        assert_eq!(w.probe_ports(), [8080, 9990]);
        let e = parse_workloads(
            Path::new("w.yaml"),
            "- {namespace: shop, name: a, probes: [{path: /ready}]}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[0].probes[0]: missing field `port`"), "{e}");
    }

    #[test]
    fn port_sets_take_ports_ranges_and_names() {
        let named = [NamedPort {
            name: Some("pg".into()),
            port: 5432,
        }];
        let set = parse_port_set(" 8080, 9000-9010,,pg ", &named).unwrap();
        for p in [8080, 9000, 9005, 9010, 5432] {
            assert!(set.contains(p), "{p}");
        }
        for p in [8081, 8999, 9011, 1] {
            assert!(!set.contains(p), "{p}");
        }
        assert!(parse_port_set("", &[]).unwrap().is_empty());
        for bad in [
            "0",
            "65536",
            "9010-9000",
            "pg",
            "80-",
            "-80",
            "a-b",
            "1-2-3",
        ] {
            assert!(parse_port_set(bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_annotations_come_from_workload_then_namespace_and_bad_lists_are_ignored() {
        let ws = parse_workloads(
            Path::new("w.yaml"),
            "- {namespace: shop, name: a, ports: [{name: pg, port: 5432}], annotations: {\
             config.linkerd.io/opaque-ports: pg, \
             config.linkerd.io/proxy-require-identity-inbound-ports: '8080,9000-9010'}}\n\
             - {namespace: shop, name: b}\n\
             - {namespace: shop, name: c, annotations: {config.linkerd.io/opaque-ports: '3306,bogus', \
             config.linkerd.io/proxy-require-identity-inbound-ports: http}}\n",
        )
        .unwrap();
        let ns: BTreeMap<_, _> = [
            (OPAQUE_PORTS_ANNOTATION.to_string(), "6379".to_string()),
            (
                REQUIRE_IDENTITY_PORTS_ANNOTATION.to_string(),
                "6379".to_string(),
            ),
        ]
        .into();
        assert!(ws[0].opaque_ports(Some(&ns)).contains(5432));
        assert!(!ws[0].opaque_ports(Some(&ns)).contains(6379));
        assert!(ws[0].require_identity_ports().contains(9003));
        assert!(ws[1].opaque_ports(Some(&ns)).contains(6379));
        assert!(ws[1].opaque_ports(None).is_empty());
        // Require-identity ports are not inherited from the namespace.
        assert!(ws[1].require_identity_ports().is_empty());
        assert!(ws[2].opaque_ports(Some(&ns)).is_empty());
        assert!(ws[2].require_identity_ports().is_empty());
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
