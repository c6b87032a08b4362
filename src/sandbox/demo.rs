//! The bundled demo, `assets/sandboxes/shop/`, compiled into the binary so that
//! `meshlens sandbox up` works from any directory: written out to a directory at start.

use std::path::{Path, PathBuf};

use super::error::{Result, io};

/// Every file of the demo, by its path under `assets/sandboxes/shop/`.
pub const FILES: &[(&str, &str)] = &[
    (
        "sandbox.yaml",
        include_str!("../../assets/sandboxes/shop/sandbox.yaml"),
    ),
    (
        "schemas/order-v1.avsc",
        include_str!("../../assets/sandboxes/shop/schemas/order-v1.avsc"),
    ),
    (
        "schemas/order-v2.avsc",
        include_str!("../../assets/sandboxes/shop/schemas/order-v2.avsc"),
    ),
    (
        "schemas/order-v3.avsc",
        include_str!("../../assets/sandboxes/shop/schemas/order-v3.avsc"),
    ),
    (
        "schemas/charge-v1.avsc",
        include_str!("../../assets/sandboxes/shop/schemas/charge-v1.avsc"),
    ),
    (
        "schemas/stock-v1.avsc",
        include_str!("../../assets/sandboxes/shop/schemas/stock-v1.avsc"),
    ),
    (
        "schemas/shipment-v1.avsc",
        include_str!("../../assets/sandboxes/shop/schemas/shipment-v1.avsc"),
    ),
    (
        "policy/orders.yaml",
        include_str!("../../assets/sandboxes/shop/policy/orders.yaml"),
    ),
    (
        "policy/payments.yaml",
        include_str!("../../assets/sandboxes/shop/policy/payments.yaml"),
    ),
    (
        "policy/inventory.yaml",
        include_str!("../../assets/sandboxes/shop/policy/inventory.yaml"),
    ),
    (
        "policy/shipping.yaml",
        include_str!("../../assets/sandboxes/shop/policy/shipping.yaml"),
    ),
    (
        "policy/contracts.yaml",
        include_str!("../../assets/sandboxes/shop/policy/contracts.yaml"),
    ),
    (
        "policy-steps/inventory.yaml",
        include_str!("../../assets/sandboxes/shop/policy-steps/inventory.yaml"),
    ),
];

/// Writes the demo under `dir` and returns the path of its manifest.
pub fn write(dir: &Path) -> Result<PathBuf> {
    for (name, text) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(dir.join("sandbox.yaml"))
}
