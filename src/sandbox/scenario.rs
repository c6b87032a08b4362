//! Scenario steps: what each does to the running cluster, and the timeline that plays the
//! timed ones. Any step can also run on demand, by name (`Cluster::run_step`).

use std::time::{Duration, SystemTime};

use super::cluster::{Cluster, write_leaf};
use super::error::{Result, SandboxError, io};
use super::manifest::{Action, Step};
use crate::identity::LeafPolicy;

/// A step that ran: when (since start), which, what to look for, and whether it worked.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub at: Duration,
    pub label: String,
    pub say: Option<String>,
    pub error: Option<String>,
}

impl Cluster {
    /// Runs the step named `label` (its `name`, or `step-<n>`) now.
    pub async fn run_step(&self, label: &str) -> Result<StepReport> {
        let (index, step) = self
            .manifest
            .scenario
            .iter()
            .enumerate()
            .find(|(i, s)| s.label(*i) == label)
            .ok_or_else(|| {
                let names: Vec<String> = (self.manifest.scenario.iter().enumerate())
                    .map(|(i, s)| s.label(i))
                    .collect();
                SandboxError::Step {
                    step: label.to_string(),
                    message: format!("no step of this name; the steps: {}", names.join(", ")),
                }
            })?;
        let step = step.clone();
        let result = self.act(&step.action).await;
        Ok(StepReport {
            at: self.elapsed(),
            label: step.label(index),
            say: step.say.clone(),
            error: result.err().map(|e| e.to_string()),
        })
    }

    /// Plays the timed steps in order, each at its time divided by the time scale; `report`
    /// hears of each. Returns after the last one (untimed steps wait for `run_step`).
    pub async fn play(&self, mut report: impl FnMut(StepReport)) {
        if !self.options.scenario {
            return;
        }
        let scale = self.options.time_scale.max(f64::MIN_POSITIVE);
        let mut timed: Vec<(usize, &Step)> = self
            .manifest
            .scenario
            .iter()
            .enumerate()
            .filter(|(_, s)| s.at.is_some())
            .collect();
        timed.sort_by_key(|(i, s)| (s.at, *i));
        for (i, step) in timed {
            let at = step.at.unwrap_or_default().div_f64(scale);
            tokio::time::sleep_until(self.started + at).await;
            let result = self.act(&step.action).await;
            report(StepReport {
                at: self.elapsed(),
                label: step.label(i),
                say: step.say.clone(),
                error: result.err().map(|e| e.to_string()),
            });
        }
    }

    async fn act(&self, action: &Action) -> Result<()> {
        let workload = action.workload().map(str::to_string);
        let fail = |message: String| SandboxError::Step {
            step: format!("{action:?}"),
            message,
        };
        let mut instances = self.instances.lock().await;
        let mine = |i: &&mut super::cluster::Instance| {
            workload
                .as_deref()
                .is_some_and(|w| i.spec.name == w || i.spec.key() == w)
        };
        match action {
            Action::Rollout { call, version, .. } => {
                for i in instances.iter_mut().filter(|i| mine(i)) {
                    i.control.set_version(call, *version);
                }
            }
            Action::Inject(inj) => {
                for i in instances.iter_mut().filter(|i| mine(i)) {
                    i.control.inject(
                        inj.route.as_deref(),
                        inj.latency.unwrap_or_default(),
                        inj.errors.unwrap_or_default(),
                    );
                }
            }
            Action::ApplyPolicy(file) => {
                let from = self.manifest.base.join(file);
                let name = from
                    .file_name()
                    .ok_or_else(|| fail(format!("{} names no file", from.display())))?;
                let to = self.live_policy.join(name);
                let tmp = self.live_policy.join(".incoming");
                std::fs::copy(&from, &tmp).map_err(io(&from))?;
                std::fs::rename(&tmp, &to).map_err(io(&to))?;
            }
            Action::RemovePolicy(name) => {
                let path = self.live_policy.join(name);
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
            Action::RotateCert(_) | Action::ExpireCert(_) => {
                let expire = matches!(action, Action::ExpireCert(_));
                for i in instances.iter_mut().filter(|i| mine(i)) {
                    let Some(id) = &i.identity else { continue };
                    // Expired: issued two days ago for an hour.
                    let (policy, now) = if expire {
                        let policy = LeafPolicy {
                            lifetime: Duration::from_secs(3600),
                            ..LeafPolicy::default()
                        };
                        (policy, SystemTime::now() - Duration::from_secs(2 * 86_400))
                    } else {
                        (LeafPolicy::default(), SystemTime::now())
                    };
                    let leaf = self.ca.issue(id, &policy, now)?;
                    write_leaf(&self.cert_dir, &i.label(), &leaf)?;
                    // Established connections keep their sessions; a restarted proxy makes
                    // every peer handshake again, with the expired certificate.
                    if expire {
                        self.restart_sidecar(i).await?;
                    }
                }
            }
            Action::Kill(_) => {
                for i in instances.iter_mut().filter(|i| mine(i)) {
                    Cluster::stop_instance(i).await;
                }
            }
            Action::Restart(_) | Action::Start(_) => {
                for i in instances.iter_mut().filter(|i| mine(i)) {
                    if matches!(action, Action::Restart(_)) {
                        Cluster::stop_instance(i).await;
                    }
                    if !i.running() {
                        self.start_instance(i).await?;
                    }
                }
            }
        }
        Ok(())
    }
}
