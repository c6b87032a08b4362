//! Avro messages on the request path. An `enforce` contract buffers the body (bounded),
//! inspects it and lets the proxy reject it before the app sees it; otherwise a bounded copy
//! is taken while the body streams through and inspected afterwards, off the request path.

use std::sync::Arc;

use bytes::Bytes;
use hyper::HeaderMap;
use tokio::sync::oneshot;

use super::inspect::{Context, Inspector, wants_inspection};
use crate::policy::authz::ClientTls;
use crate::policy::contract::Contract;
use crate::tap::{Inspection, MessageSide};

/// Headers that can name a schema (Confluent, Apicurio, `x-avro-*`), copied so inspection
/// can run after the request has moved on.
pub fn schema_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("x-avro") || k.starts_with("apicurio") || k.contains("schema")
        })
        .take(16)
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Whether a body of this content type may be Avro that only its first bytes would reveal
/// (no content type, or `application/octet-stream`): worth a copy to sniff.
pub fn maybe_avro(content_type: Option<&str>, contract: bool) -> bool {
    match content_type {
        None => true,
        Some(ct) => {
            contract
                || wants_inspection(Some(ct), &[], false)
                || ct
                    .split(';')
                    .next()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/octet-stream"))
        }
    }
}

/// One message to inspect, with what inspection needs to know about it.
pub struct Message {
    pub side: MessageSide,
    pub content_type: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub contract: Option<Arc<Contract>>,
    pub client: ClientTls,
}

impl Message {
    /// Inspects `body` if it is (or, by its first bytes, looks like) Avro.
    pub fn inspect(
        &self,
        inspector: &Inspector,
        body: &[u8],
        truncated: bool,
    ) -> Option<Inspection> {
        if body.is_empty()
            || !wants_inspection(self.content_type.as_deref(), body, self.contract.is_some())
        {
            return None;
        }
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let mut inspection = inspector.inspect(
            body,
            &Context {
                side: self.side,
                headers: &headers,
                contract: self.contract.as_deref(),
                client: &self.client,
                truncated,
            },
        );
        inspection.side = Some(self.side);
        Some(inspection)
    }
}

/// Where inspections run: on the runtime when schemas are in memory, on the blocking pool
/// when a cache miss may wait for a remote registry.
#[derive(Clone)]
pub struct Inspections {
    pub inspector: Arc<Inspector>,
    pub may_block: bool,
}

impl Inspections {
    /// Inspects in the background; the answer goes to `tx` (dropped when there was nothing
    /// to inspect).
    pub fn spawn(
        &self,
        message: Message,
        body: Bytes,
        truncated: bool,
        tx: oneshot::Sender<Inspection>,
    ) {
        let inspector = self.inspector.clone();
        let work = move || {
            if let Some(i) = message.inspect(&inspector, &body, truncated) {
                let _ = tx.send(i);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if self.may_block => drop(rt.spawn_blocking(work)),
            Ok(rt) => drop(rt.spawn(async move { work() })),
            // Dropped while the runtime shuts down: nobody is waiting for the answer.
            Err(_) => {}
        }
    }

    /// Inspects now (an enforced contract needs the answer before forwarding).
    pub async fn now(&self, message: Message, body: Bytes, truncated: bool) -> Option<Inspection> {
        if self.may_block {
            let inspector = self.inspector.clone();
            tokio::task::spawn_blocking(move || message.inspect(&inspector, &body, truncated))
                .await
                .ok()
                .flatten()
        } else {
            message.inspect(&self.inspector, &body, truncated)
        }
    }
}

/// A request's inspection: none, known, or still running.
pub enum Pending {
    None,
    Ready(Box<Inspection>),
    Running(oneshot::Receiver<Inspection>),
}

impl Pending {
    /// The result, waiting a bounded time for a running inspection.
    pub async fn result(self) -> Option<Inspection> {
        match self {
            Pending::None => None,
            Pending::Ready(i) => Some(*i),
            Pending::Running(rx) => tokio::time::timeout(std::time::Duration::from_secs(5), rx)
                .await
                .ok()
                .and_then(Result::ok),
        }
    }
}

/// A registry that knows no schema: only container files (which carry their writer schema)
/// decode, and contracts report every other message as unregistered.
pub struct NoRegistry;

impl crate::avro::SchemaSource for NoRegistry {
    fn lookup(
        &self,
        _: &crate::avro::framing::SchemaRef,
    ) -> Result<Option<crate::avro::KnownSchema>, String> {
        Ok(None)
    }
}
