//! One request as tap reports it: built once when the request arrives, then turned into the
//! request-start, response-start and response-end events that share its stream id.

use std::time::Instant;

use crate::policy::eval::Decision as PolicyDecision;
use crate::tap::event::now_us;
use crate::tap::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, Publisher, Tls, TriedAuthz,
};

#[derive(Debug, Clone)]
pub struct Exchange {
    pub stream: u64,
    pub started: Instant,
    pub proxy: String,
    pub direction: Direction,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub tls: Tls,
    pub http: Http,
    pub decision: Option<Decision>,
}

impl Exchange {
    fn event(&self, kind: EventKind, http: Http, avro: Vec<Inspection>) -> Event {
        Event {
            stream: self.stream,
            kind,
            time_us: now_us(),
            proxy: self.proxy.clone(),
            direction: self.direction,
            source: self.source.clone(),
            destination: self.destination.clone(),
            tls: self.tls.clone(),
            http: Some(http),
            tcp: None,
            decision: self.decision.clone(),
            avro,
            lost: 0,
        }
    }

    pub fn request_start(&self, tap: &Publisher) {
        if tap.active() {
            tap.publish(self.event(EventKind::RequestStart, self.http.clone(), Vec::new()));
        }
    }

    pub fn response_start(&self, tap: &Publisher, status: u16, proxy_error: Option<&str>) {
        if tap.active() {
            let mut http = self.http.clone();
            http.status = Some(status);
            http.latency_us = Some(self.started.elapsed().as_micros() as u64);
            http.proxy_error = proxy_error.map(str::to_string);
            tap.publish(self.event(EventKind::ResponseStart, http, Vec::new()));
        }
    }

    pub fn response_end(&self, tap: &Publisher, end: ResponseEnd) {
        if tap.active() {
            let mut http = self.http.clone();
            http.status = Some(end.status);
            http.grpc_status = end.grpc_status;
            http.latency_us = Some(self.started.elapsed().as_micros() as u64);
            http.request_bytes = end.request_bytes;
            http.response_bytes = end.response_bytes;
            http.proxy_error = end.proxy_error;
            tap.publish(self.event(EventKind::ResponseEnd, http, end.avro));
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
