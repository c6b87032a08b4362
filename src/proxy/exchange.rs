//! One request as tap reports it: built once when the request arrives, then turned into the
//! request-start, response-start and response-end events that share its stream id.

use std::time::Instant;

use crate::policy::eval::Decision as PolicyDecision;
use crate::tap::event::now_us;
use crate::tap::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, Publisher, Tls, TriedAuthz,
};

/// A request's start time and, when someone taps, what tap reports about it. Building the
/// details costs a dozen allocations, so nothing is built while nobody listens.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub started: Instant,
    details: Option<Box<Details>>,
}

#[derive(Debug, Clone)]
pub struct Details {
    pub stream: u64,
    pub proxy: String,
    pub direction: Direction,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub tls: Tls,
    pub http: Http,
    pub decision: Option<Decision>,
}

impl Exchange {
    /// `details` runs only when `tap` has subscribers.
    pub fn new(tap: &Publisher, started: Instant, details: impl FnOnce() -> Details) -> Exchange {
        Exchange {
            started,
            details: tap.active().then(|| Box::new(details())),
        }
    }

    fn event(d: &Details, kind: EventKind, http: Http, avro: Vec<Inspection>) -> Event {
        Event {
            stream: d.stream,
            kind,
            time_us: now_us(),
            proxy: d.proxy.clone(),
            direction: d.direction,
            source: d.source.clone(),
            destination: d.destination.clone(),
            tls: d.tls.clone(),
            http: Some(http),
            tcp: None,
            decision: d.decision.clone(),
            avro,
            lost: 0,
        }
    }

    pub fn request_start(&self, tap: &Publisher) {
        if let Some(d) = &self.details {
            tap.publish(Self::event(
                d,
                EventKind::RequestStart,
                d.http.clone(),
                Vec::new(),
            ));
        }
    }

    pub fn response_start(&self, tap: &Publisher, status: u16, proxy_error: Option<&str>) {
        if let Some(d) = &self.details {
            let mut http = d.http.clone();
            http.status = Some(status);
            http.latency_us = Some(self.started.elapsed().as_micros() as u64);
            http.proxy_error = proxy_error.map(str::to_string);
            tap.publish(Self::event(d, EventKind::ResponseStart, http, Vec::new()));
        }
    }

    pub fn response_end(&self, tap: &Publisher, end: ResponseEnd) {
        if let Some(d) = &self.details {
            let mut http = d.http.clone();
            http.status = Some(end.status);
            http.grpc_status = end.grpc_status;
            http.latency_us = Some(self.started.elapsed().as_micros() as u64);
            http.request_bytes = end.request_bytes;
            http.response_bytes = end.response_bytes;
            http.proxy_error = end.proxy_error;
            tap.publish(Self::event(d, EventKind::ResponseEnd, http, end.avro));
        }
    }
}

/// What is known once the response is over.
#[derive(Debug, Default)]
pub struct ResponseEnd {
    pub status: u16,
    pub grpc_status: Option<u32>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub proxy_error: Option<String>,
    pub avro: Vec<Inspection>,
}

/// The policy decision as tap carries it, with every authorization tried and why it missed.
pub fn tap_decision(d: &PolicyDecision<'_>) -> Decision {
    let req = d.request;
    Decision {
        verdict: d.verdict.as_str().to_string(),
        server_kind: d.server.kind.clone(),
        server_name: d.server.name.clone(),
        route_kind: d.route.map(|r| r.kind.clone()),
        route_name: d.route.map(|r| r.name.clone()),
        authz_kind: d.authorization.map(|a| a.kind.clone()),
        authz_name: d.authorization.map(|a| a.name.clone()),
        reason: d.reason(),
        tried: d
            .tried
            .iter()
            .map(|t| TriedAuthz {
                kind: t.authz.meta.kind.clone(),
                name: t.authz.meta.name.clone(),
                matched: t.result.is_ok(),
                miss: t
                    .result
                    .err()
                    .map(|_| t.authz.explain(t.result, &req.client_ip, &req.tls)),
            })
            .collect(),
    }
}
