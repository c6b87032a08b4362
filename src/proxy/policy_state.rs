//! The policy a sidecar enforces: Linkerd resources and schema contracts from a directory,
//! indexed for this one workload. A reload that fails keeps the previous policy in force.

use std::path::{Path, PathBuf};

use super::inspect::Contracts;
use crate::policy::defaults::Settings;
use crate::policy::index::Index;
use crate::policy::lint::{admitted, lint};
use crate::policy::load::load_paths;
use crate::policy::workload::Workload;

#[derive(Debug)]
pub struct PolicyState {
    pub index: Index,
    pub contracts: Contracts,
    /// Resources left out (what Linkerd's admission webhook would reject), in words.
    pub warnings: Vec<String>,
    /// Bumped on every successful load, so long-lived connections can re-check.
    pub generation: u64,
}

impl PolicyState {
    /// Only the default policy (no files).
    pub fn defaults(workload: &Workload, settings: &Settings) -> PolicyState {
        PolicyState {
            index: Index::build(
                &Default::default(),
                std::slice::from_ref(workload),
                settings,
            ),
            contracts: Contracts::default(),
            warnings: Vec::new(),
            generation: 0,
        }
    }

    /// Loads every YAML file under `dir`. Files that do not parse fail the load (a half-read
    /// policy could allow what the full one denies); invalid resources and contracts are
    /// left out with a warning, as a cluster would never have admitted them.
    pub fn load(
        dir: &Path,
        workload: &Workload,
        settings: &Settings,
        generation: u64,
    ) -> Result<PolicyState, String> {
        if !dir.is_dir() {
            return Err(format!(
                "{}: not a directory of policy files",
                dir.display()
            ));
        }
        let (set, load_errors) = load_paths(&[PathBuf::from(dir)]);
        if let Some(first) = load_errors.first() {
            return Err(format!(
                "{first} ({} problem(s); `meshlens policy lint {}` lists them)",
                load_errors.len(),
                dir.display()
            ));
        }
        let report = lint(&set, Vec::new(), None, settings);
        let mut warnings: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
        let (set, _) = admitted(set);
        warnings.dedup();
        Ok(PolicyState {
            index: Index::build(&set, std::slice::from_ref(workload), settings),
            contracts: Contracts::new(report.contracts),
            warnings,
            generation,
        })
    }
}
