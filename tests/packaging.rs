//! What the packages ship is there and fits together: icons at every size the menu entry and
//! the .deb name, the .deb's files, and the Kubernetes example's proxy config and policy,
//! read by the proxy's own loaders. (`.ci/run` validates the .desktop and metainfo files with
//! desktop-file-validate and appstreamcli.)

use std::path::{Path, PathBuf};

use meshlens::proxy::config::ProxyConfig;
use meshlens::proxy::policy_state::PolicyState;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const SIZES: [u32; 8] = [16, 24, 32, 48, 64, 128, 256, 512];

/// A PNG's width and height, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The source paths of `[package.metadata.deb]` assets.
fn deb_assets() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let section = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("Cargo.toml has [package.metadata.deb]");
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[\""))
        .map(|l| l.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn icons_exist_at_every_size_the_packages_name() {
    let desktop = read("packaging/io.github.meshlens.meshlens.desktop");
    assert!(desktop.lines().any(|l| l == "Icon=meshlens"), "{desktop}");
    let metainfo = read("packaging/io.github.meshlens.meshlens.metainfo.xml");
    assert!(metainfo.contains(r#"<icon type="stock">meshlens</icon>"#));
    assert!(read("assets/icons/meshlens.svg").contains("<svg"));
    let assets = deb_assets();
    for size in SIZES {
        let path = format!("assets/icons/hicolor/{size}x{size}/apps/meshlens.png");
        assert_eq!(png_size(&root().join(&path)), (size, size), "{path}");
        assert!(assets.contains(&path), "the .deb lacks {path}");
    }
}

#[test]
fn every_deb_asset_but_the_binary_is_in_the_repository() {
    let assets = deb_assets();
    assert!(assets.contains(&"target/release/meshlens".to_string()));
    for required in [
        "LICENSE",
        "README.md",
        "packaging/io.github.meshlens.meshlens.desktop",
        "packaging/io.github.meshlens.meshlens.metainfo.xml",
    ] {
        assert!(
            assets.iter().any(|a| a == required),
            "the .deb lacks {required}"
        );
    }
    for asset in assets.iter().filter(|a| !a.starts_with("target/")) {
        assert!(root().join(asset).is_file(), "{asset} is missing");
    }
    assert!(read("LICENSE").contains("Apache License"));
    assert!(read("Cargo.toml").contains("license = \"Apache-2.0\""));
}

/// The value under `key` of a ConfigMap's `data` in a multi-document manifest.
fn configmap_data(manifest: &str, name: &str, key: &str) -> String {
    for doc in serde_yaml_ng::Deserializer::from_str(manifest) {
        let value: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).unwrap();
        if value["kind"] == "ConfigMap" && value["metadata"]["name"] == name {
            return value["data"][key].as_str().unwrap().to_string();
        }
    }
    panic!("no ConfigMap {name}");
}

#[test]
fn the_kubernetes_example_config_and_policy_load_in_the_proxy() {
    let path = Path::new("packaging/k8s/proxy.yaml");
    let text = read("packaging/k8s/proxy.yaml");
    let config = ProxyConfig::parse(path, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.identity.cert,
        Path::new("/var/run/meshlens/identity/tls.crt")
    );
    assert_eq!(config.admin.listen.port(), 4191, "the tap port");
    assert_eq!(
        config.local_identity().unwrap().as_str(),
        "orders.shop.serviceaccount.identity.linkerd.cluster.local"
    );

    let manifest = read("packaging/k8s/orders.yaml");
    assert_eq!(
        configmap_data(&manifest, "meshlens-orders-proxy", "proxy.yaml"),
        text,
        "the ConfigMap carries packaging/k8s/proxy.yaml"
    );
    assert!(manifest.contains("args: [\"proxy\", \"--config\", \"/etc/meshlens/proxy.yaml\"]"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders.yaml"),
        configmap_data(&manifest, "meshlens-orders-policy", "orders.yaml"),
    )
    .unwrap();
    let settings = config.policy_settings().unwrap();
    let policy = PolicyState::load(dir.path(), &config.workload, &settings, 1).unwrap();
    assert!(policy.warnings.is_empty(), "{:?}", policy.warnings);
}
