//! The live line `sandbox up` prints: workloads up, requests per second, denials and the
//! subjects whose schemas drifted, from a `mesh::Mesh` fed by the sandbox's own tap.

use crate::mesh::Mesh;
use crate::mesh::drift;

/// Requests per second are averaged over this many whole seconds.
const RATE_SECONDS: i64 = 5;

/// What the line says besides the model: the cluster's clock, replicas running, and calls
/// that failed in the mesh (no connection, proxy errors) as the apps saw them.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub elapsed_secs: u64,
    pub up: usize,
    pub total: usize,
    pub mesh_failures: u64,
}

/// One line: `12s  workloads 7/8  rps 23.4  failed 0  denied 41 (last: ...)  drift: ...`.
pub fn line(mesh: &Mesh, status: Status) -> String {
    let Status {
        elapsed_secs,
        up,
        total,
        mesh_failures,
    } = status;
    let mut out = format!("{elapsed_secs:>4}s  workloads {up}/{total}");
    let rps = mesh.now_us().map_or(0.0, |now| {
        // The current second is still filling: count the whole ones before it.
        let end = now - 1_000_000;
        let n: u64 = mesh
            .traffic()
            .iter(end)
            .filter(|(t, _)| *t > end - RATE_SECONDS * 1_000_000)
            .filter_map(|(_, b)| b.map(|b| b.requests))
            .sum();
        n as f64 / RATE_SECONDS as f64
    });
    out.push_str(&format!("  rps {rps:.1}  failed {mesh_failures}"));
    let hits = mesh.policy_hits();
    let denied: u64 = hits.hits().map(|h| h.denied).sum();
    out.push_str(&format!("  denied {denied}"));
    if let Some(d) = hits.denials().next_back() {
        let client = match d.client.rsplit_once(':') {
            // An address: its port is ephemeral.
            Some((ip, port)) if port.parse::<u16>().is_ok() => ip,
            _ => d.client.as_str(),
        };
        let route = match &d.key.route {
            Some(r) if !r.starts_with("default/") => format!(" {r}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            " (last: {} to {}{route})",
            short(client),
            d.key.server
        ));
    }
    let mut drifted: Vec<String> = mesh
        .drift()
        .subjects()
        .filter_map(|(name, s)| {
            let (status, why) = s.status();
            let colour = match status {
                drift::Status::Green => return None,
                drift::Status::Amber => "amber",
                drift::Status::Red => "red",
            };
            Some(match why {
                Some(w) => format!("{name} {colour} ({})", short(&w)),
                None => format!("{name} {colour}"),
            })
        })
        .collect();
    drifted.sort();
    if drifted.is_empty() {
        out.push_str("  drift: none");
    } else {
        out.push_str(&format!("  drift: {}", drifted.join("; ")));
    }
    out
}

/// Identity names without their common tail (`web.shop.serviceaccount.identity.linkerd.
/// cluster.local` → `web.shop`): the line has to fit a terminal.
fn short(text: &str) -> String {
    const MARK: &str = ".serviceaccount.identity.";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        out.push_str(&rest[..i]);
        rest = &rest[i + MARK.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_shortened_to_account_and_namespace() {
        assert_eq!(
            short(
                "web.shop.serviceaccount.identity.linkerd.cluster.local sends v3 to orders.shop.serviceaccount.identity.linkerd.cluster.local)"
            ),
            "web.shop sends v3 to orders.shop)"
        );
        assert_eq!(short("127.0.0.16"), "127.0.0.16");
    }

    #[test]
    fn an_empty_mesh_reads_as_quiet() {
        let mesh = Mesh::default();
        assert_eq!(
            line(
                &mesh,
                Status {
                    elapsed_secs: 3,
                    up: 7,
                    total: 8,
                    mesh_failures: 0
                }
            ),
            "   3s  workloads 7/8  rps 0.0  failed 0  denied 0  drift: none"
        );
    }
}
