//! Reading policy YAML: files or directories (recursively, `*.yaml`/`*.yml`, in name order),
//! multi-document streams and `kind: List`. Every problem is collected with its file, document
//! and field, so a lint run lists them all instead of stopping at the first.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::error::{PolicyError, Source};
use super::resources::{GATEWAY_GROUP, LINKERD_GROUP, MESHLENS_GROUP, Metadata, Resource, Spec};

/// Files larger than this are refused rather than parsed (policy files are kilobytes).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// One resource and where it was read.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub at: Source,
    pub resource: Resource,
}

/// Everything read from a set of paths.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub resources: Vec<Loaded>,
    /// Documents of other kinds (Deployments, Services, ...) that policy does not read.
    pub ignored: Vec<(Source, String)>,
}

impl PolicySet {
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().map(|l| &l.resource)
    }
}

/// Loads every path; problems are returned alongside what did load.
pub fn load_paths(paths: &[PathBuf]) -> (PolicySet, Vec<PolicyError>) {
    let mut set = PolicySet::default();
    let mut errors = Vec::new();
    for path in paths {
        let mut files = Vec::new();
        if let Err(e) = collect_files(path, &mut files) {
            errors.push(e);
        }
        for file in files {
            match read_file(&file) {
                Ok(text) => load_str(&file, &text, &mut set, &mut errors),
                Err(e) => errors.push(e),
            }
        }
    }
    (set, errors)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    // Hidden entries are skipped: a Kubernetes ConfigMap volume holds each file twice more
    // under `..data` and a timestamped `..<date>` directory, which would load every resource
    // three times.
    entries.retain(|e| {
        e.file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
    });
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(entry);
        }
    }
    Ok(())
}

/// Reads a text file within `MAX_FILE_BYTES`.
pub fn read_file(path: &Path) -> Result<String, PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(io(std::io::Error::other(format!(
            "file is {len} bytes, more than the {MAX_FILE_BYTES} a policy file may have"
        ))));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Lines (1-based) where each document starts, found from `---` separators; used only to point
/// editors at the right place.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut content_before_first = false;
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            starts.push(i + 1);
        } else if starts.is_empty() && !line.trim().is_empty() && !line.starts_with('#') {
            content_before_first = true;
        }
    }
    if content_before_first || starts.is_empty() {
        starts.insert(0, 1);
    }
    starts
}

/// Parses one file's text, appending resources and errors.
pub fn load_str(file: &Path, text: &str, set: &mut PolicySet, errors: &mut Vec<PolicyError>) {
    let lines = document_lines(text);
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let mut at = Source {
            file: file.to_path_buf(),
            document: i + 1,
            item: None,
            line: lines.get(i).copied(),
        };
        let value = match Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                at.line = e.location().map(|l| l.line()).or(at.line);
                errors.push(PolicyError::Syntax {
                    at: at.into(),
                    message: format!("not valid YAML: {}", strip_location(&e.to_string())),
                });
                // The parser cannot resynchronise after a syntax error.
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        if value.get("kind").and_then(Value::as_str) == Some("List") {
            match value.get("items") {
                Some(Value::Sequence(items)) => {
                    for (n, item) in items.iter().enumerate() {
                        let at = Source {
                            item: Some(n),
                            ..at.clone()
                        };
                        load_value(at, item.clone(), set, errors);
                    }
                }
                _ => errors.push(PolicyError::Syntax {
                    at: at.into(),
                    message: "kind: List needs an `items` sequence".into(),
                }),
            }
        } else {
            load_value(at, value, set, errors);
        }
    }
}

fn strip_location(message: &str) -> &str {
    message
        .find(" at line ")
        .map(|i| &message[..i])
        .unwrap_or(message)
}

/// Which kinds of which groups we read, and their served versions.
fn served(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (group, kind) {
        (LINKERD_GROUP, "Server") => &["v1beta1", "v1beta2", "v1beta3"],
        (LINKERD_GROUP, "ServerAuthorization") => &["v1beta1"],
        (LINKERD_GROUP, "AuthorizationPolicy")
        | (LINKERD_GROUP, "MeshTLSAuthentication")
        | (LINKERD_GROUP, "NetworkAuthentication") => &["v1alpha1"],
        (LINKERD_GROUP, "HTTPRoute") => &["v1alpha1", "v1beta1", "v1beta2", "v1beta3"],
        (GATEWAY_GROUP, "HTTPRoute") => &["v1", "v1beta1"],
        (GATEWAY_GROUP, "GRPCRoute") => &["v1", "v1alpha2"],
        (MESHLENS_GROUP, "SchemaContract") => &["v1alpha1"],
        ("", "Namespace") => &["v1"],
        _ => return None,
    })
}

fn load_value(at: Source, value: Value, set: &mut PolicySet, errors: &mut Vec<PolicyError>) {
    let Value::Mapping(map) = value else {
        errors.push(PolicyError::Syntax {
            at: at.into(),
            message: "a document must be a mapping with apiVersion, kind, metadata and spec".into(),
        });
        return;
    };
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let invalid = |field: &str, message: String| PolicyError::Invalid {
        at: at.clone().into(),
        kind: if kind.is_empty() {
            "document".into()
        } else {
            kind.clone()
        },
        name: if name.is_empty() {
            "(unnamed)".into()
        } else {
            name.clone()
        },
        field: field.into(),
        message,
    };
    if api_version.is_empty() || kind.is_empty() {
        errors.push(invalid(
            if api_version.is_empty() {
                "apiVersion"
            } else {
                "kind"
            },
            "missing: every document needs apiVersion and kind".into(),
        ));
        return;
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let Some(versions) = served(group, &kind) else {
        if group == LINKERD_GROUP || group == MESHLENS_GROUP {
            errors.push(invalid(
                "kind",
                format!("`{kind}` is not a kind of {group}"),
            ));
        } else {
            set.ignored.push((at, format!("{api_version} {kind}")));
        }
        return;
    };
    if !versions.contains(&version) {
        errors.push(invalid(
            "apiVersion",
            format!(
                "{kind} is not served as {api_version}; use {group}/{}",
                versions.join(" or ")
            ),
        ));
        return;
    }
    let metadata: Metadata = match typed(map.get("metadata"), "metadata") {
        Ok(m) => m,
        Err((field, message)) => return errors.push(invalid(&field, message)),
    };
    let spec_value = map.get("spec");
    let spec = match kind.as_str() {
        "Server" => typed(spec_value, "spec").map(Spec::Server),
        "ServerAuthorization" => typed(spec_value, "spec").map(Spec::ServerAuthorization),
        "AuthorizationPolicy" => typed(spec_value, "spec").map(Spec::AuthorizationPolicy),
        "MeshTLSAuthentication" => typed(spec_value, "spec").map(Spec::MeshTlsAuthentication),
        "NetworkAuthentication" => typed(spec_value, "spec").map(Spec::NetworkAuthentication),
        "HTTPRoute" => typed(spec_value, "spec").map(Spec::HttpRoute),
        "GRPCRoute" => typed(spec_value, "spec").map(Spec::GrpcRoute),
        "SchemaContract" => typed(spec_value, "spec").map(Spec::SchemaContract),
        _ => Ok(Spec::Namespace),
    };
    match spec {
        Ok(spec) => set.resources.push(Loaded {
            at,
            resource: Resource {
                api_version,
                metadata,
                spec,
            },
        }),
        Err((field, message)) => errors.push(invalid(&field, message)),
    }
}

/// Deserializes one part of a document; the error carries the field path inside it.
fn typed<T: DeserializeOwned>(value: Option<&Value>, root: &str) -> Result<T, (String, String)> {
    let Some(value) = value else {
        return Err((root.into(), "missing".into()));
    };
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            root.to_string()
        } else {
            format!("{root}.{path}")
        };
        (field, strip_location(&e.inner().to_string()).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_configmap_volume_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("..2026_11_27_06_00_00.1/nested")).unwrap();
        std::fs::write(d.join("..2026_11_27_06_00_00.1/orders.yaml"), "").unwrap();
        std::fs::write(d.join("..2026_11_27_06_00_00.1/nested/x.yaml"), "").unwrap();
        std::os::unix::fs::symlink("..2026_11_27_06_00_00.1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/orders.yaml", d.join("orders.yaml")).unwrap();
        std::fs::write(d.join(".swap.yaml"), "").unwrap();
        let mut files = Vec::new();
        collect_files(d, &mut files).unwrap();
        assert_eq!(files, vec![d.join("orders.yaml")]);
    }

    fn load(text: &str) -> (PolicySet, Vec<PolicyError>) {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        load_str(Path::new("p.yaml"), text, &mut set, &mut errors);
        (set, errors)
    }

    #[test]
    fn reads_multi_document_files_and_lists() {
        let (set, errors) = load(
            "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: a, namespace: shop}\n\
             spec: {podSelector: {matchLabels: {app: a}}, port: 8080}\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- apiVersion: policy.linkerd.io/v1alpha1\n  kind: NetworkAuthentication\n  \
             metadata: {name: n}\n  spec: {networks: [{cidr: 10.0.0.0/8}]}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.resources.len(), 2);
        assert_eq!(set.resources[1].at.document, 2);
        assert_eq!(set.resources[1].at.item, Some(0));
        assert_eq!(set.resources[1].resource.namespace(), "default");
        assert_eq!(set.ignored.len(), 1);
    }

    #[test]
    fn shape_errors_name_document_and_field() {
        let (_, errors) = load(
            "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: ok}\nspec: {podSelector: {}, port: 80}\n\
             ---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: bad}\n\
             spec: {podSelector: {matchLabels: {app: a}}, port: 80, proxyProtocol: HTTP/3}\n",
        );
        assert_eq!(errors.len(), 1);
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("p.yaml:6: document 2: Server bad: spec.proxyProtocol:"),
            "{msg}"
        );
    }

    #[test]
    fn bad_yaml_is_one_error_not_a_panic() {
        for text in [
            "a: [1, 2",
            "\t- x: {",
            "kind: Server\n  bad: indent\n x",
            "- 1\n- 2",
        ] {
            let (_, errors) = load(text);
            assert_eq!(errors.len(), 1, "{text}");
            assert!(!errors[0].to_string().contains('\n'));
        }
    }

    #[test]
    fn unknown_linkerd_kinds_and_versions_are_errors() {
        let (_, errors) = load(
            "apiVersion: policy.linkerd.io/v1beta3\nkind: Sever\nmetadata: {name: a}\nspec: {}\n---\n\
             apiVersion: policy.linkerd.io/v1\nkind: Server\nmetadata: {name: b}\nspec: {}\n",
        );
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0]
                .to_string()
                .contains("kind: `Sever` is not a kind")
        );
        assert!(
            errors[1]
                .to_string()
                .contains("apiVersion: Server is not served")
        );
    }
}
