//! What both proxies of one sidecar share: who the workload is, its identity, the policy in
//! force, limits, and where tap events go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::config::{InspectionLimits, Timeouts};
use super::credentials::Credentials;
use super::messages::Inspections;
use super::metrics::{AvroLabels, Drift, Metrics};
use super::policy_state::PolicyState;
use crate::policy::workload::Workload;
use crate::tap::Publisher;
use crate::tap::{Direction, Inspection};

pub struct Shared {
    pub workload: Workload,
    /// `namespace/name`, as tap names the proxy.
    pub proxy_name: String,
    pub credentials: Arc<Credentials>,
    policy: RwLock<Arc<PolicyState>>,
    policy_generation: tokio::sync::watch::Sender<u64>,
    pub tap: Publisher,
    pub metrics: Arc<Metrics>,
    inspections: RwLock<Inspections>,
    pub timeouts: Timeouts,
    pub limits: InspectionLimits,
    /// Random per process, so stream ids from two proxies rarely collide in a merged view.
    /// Within `STREAM_ID_MASK`, as every id is.
    stream_base: u64,
    next_stream: AtomicU64,
}

impl Shared {
    pub fn new(
        workload: Workload,
        credentials: Arc<Credentials>,
        policy: PolicyState,
        tap: Publisher,
        inspections: Inspections,
        timeouts: Timeouts,
        limits: InspectionLimits,
    ) -> Shared {
        let generation = policy.generation;
        let metrics = Arc::new(
            Metrics::new()
                .with_identity(credentials.cert().clone())
                .with_tap(tap.clone()),
        );
        Shared {
            proxy_name: format!("{}/{}", workload.namespace, workload.name),
            workload,
            credentials,
            policy: RwLock::new(Arc::new(policy)),
            policy_generation: tokio::sync::watch::channel(generation).0,
            metrics,
            tap,
            inspections: RwLock::new(inspections),
            timeouts,
            limits,
            stream_base: random_base(),
            next_stream: AtomicU64::new(1),
        }
    }

    pub fn policy(&self) -> Arc<PolicyState> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_policy(&self, state: PolicyState) {
        let generation = state.generation;
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        self.policy_generation.send_replace(generation);
    }

    /// Changes whenever a new policy takes effect.
    pub fn policy_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.policy_generation.subscribe()
    }

    pub fn inspections(&self) -> Inspections {
        self.inspections
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts a new registry view in service (a directory registry that changed on disk).
    pub fn set_inspections(&self, inspections: Inspections) {
        *self.inspections.write().unwrap_or_else(|p| p.into_inner()) = inspections;
    }

    pub fn next_stream(&self) -> u64 {
        stream_id(
            self.stream_base,
            self.next_stream.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// Counts inspected messages by subject (empty when none could be told): decoded or
    /// invalid, and drift.
    pub fn record_avro(&self, direction: Direction, inspections: &[Inspection]) {
        for i in inspections {
            let series = self.metrics.avro(&AvroLabels {
                direction,
                subject: i.subject.as_deref().unwrap_or("").into(),
            });
            if i.valid {
                series.decoded();
            } else {
                series.invalid();
            }
            let drift = match i.drift.as_deref() {
                Some("compatible") => Some(Drift::Compatible),
                Some("incompatible") => Some(Drift::Incompatible),
                Some("unregistered") => Some(Drift::Unregistered),
                _ => None,
            };
            if let Some(d) = drift {
                series.drift(d, i.version);
            }
        }
    }

    pub fn local_identity(&self) -> &str {
        self.credentials.local().as_str()
    }
}

/// Stream ids fit in 53 bits, so JSON readers that hold numbers as doubles (jq,
/// JavaScript) read `meshlens tap --output json`'s ids exactly.
const STREAM_ID_MASK: u64 = (1 << 53) - 1;

/// The `n`th id of a proxy whose base is `base`: distinct for every `n` below 2^53.
fn stream_id(base: u64, n: u64) -> u64 {
    (base ^ n) & STREAM_ID_MASK
}

/// 21 random bits above the counter's low 32.
fn random_base() -> u64 {
    let mut bytes = [0u8; 8];
    // The same source rustls uses; a failure only makes ids less unique.
    let _ = rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes);
    u64::from_le_bytes(bytes) & STREAM_ID_MASK & 0xffff_ffff_0000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_fit_in_53_bits_and_stay_distinct() {
        let limit = 1u64 << 53;
        for _ in 0..64 {
            let base = random_base();
            assert!(base < limit, "{base:#x}");
            let ids: Vec<u64> = [1, 2, 3, u64::from(u32::MAX), u64::from(u32::MAX) + 1]
                .into_iter()
                .map(|n| stream_id(base, n))
                .collect();
            assert!(ids.iter().all(|&id| id < limit), "{ids:x?}");
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), ids.len(), "{ids:x?}");
        }
        // Whatever the base, the low 32 bits still count.
        assert_eq!(stream_id(u64::MAX, 1), STREAM_ID_MASK ^ 1);
    }
}
