//! Which tap events a subscriber wants: the matches of `linkerd viz tap` (from/to workload or
//! namespace, method, path prefix, authority) plus what only meshlens sees (either side's
//! identity, status class, the policy decision, the Avro subject, invalid messages only) and
//! a rate limit.
//!
//! One parser serves the URL query of `GET /tap?...` and the CLI flags (`set(key, value)`), so
//! both say the same thing about a bad value, and [`Filter::to_query`] writes the query back
//! for the client. [`Filter::matches`] compares a handful of strings and allocates nothing: it
//! runs for every event on a busy proxy. Lost notices always pass, so a subscriber always
//! learns what it missed.

use std::fmt;
use std::time::Instant;

use super::event::{Direction, Endpoint, Event, EventKind};

/// The longest query accepted, so a filter cannot be used to make the proxy allocate.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// The highest `rate` (events per second) a subscriber may ask for.
pub const MAX_RATE: u32 = 100_000;

/// The keys `set` knows, in the order `to_query` writes them.
pub const KEYS: [&str; 13] = [
    "from",
    "to",
    "from-namespace",
    "to-namespace",
    "identity",
    "method",
    "path",
    "authority",
    "status",
    "decision",
    "subject",
    "invalid",
    "rate",
];

/// A bad filter: one line naming the key and what to give instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilterError {}

fn bad(message: impl Into<String>) -> FilterError {
    FilterError(message.into())
}

/// `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
}

/// The policy verdict of an inbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    NoRoute,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::NoRoute => "no_route",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<WorkloadRef>,
    pub to: Option<WorkloadRef>,
    pub from_namespace: Option<String>,
    pub to_namespace: Option<String>,
    /// An mTLS identity on either side.
    pub identity: Option<String>,
    /// Upper case.
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    /// Compared without regard to ASCII case, as host names are.
    pub authority: Option<String>,
    /// The hundreds digit: 2 for `2xx`. Request-start events carry no status yet, so a
    /// status filter leaves them out.
    pub status_class: Option<u16>,
    pub decision: Option<Verdict>,
    /// An Avro subject any inspected body of the event had.
    pub subject: Option<String>,
    /// Only events with an Avro body that did not decode or conform.
    pub invalid_only: bool,
    /// At most this many events per second reach the subscriber; the rest are counted in a
    /// Lost notice.
    pub rate: Option<u32>,
}

impl Filter {
    /// Parses a URL query (`to=shop/orders&status=5xx`, no leading `?`); an empty query is
    /// the filter that takes everything.
    pub fn from_query(query: &str) -> Result<Filter, FilterError> {
        let mut filter = Filter::default();
        for (key, value) in query_pairs(query)? {
            filter.set(&key, &value)?;
        }
        Ok(filter)
    }

    /// Sets one key from its text, as in a query or a CLI flag; a key given twice is refused
    /// rather than silently overridden.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), FilterError> {
        fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), FilterError> {
            if slot.is_some() {
                return Err(bad(format!("filter `{key}` is given twice; give it once")));
            }
            *slot = Some(value);
            Ok(())
        }
        let text = |what: &str| -> Result<String, FilterError> {
            if value.is_empty() {
                Err(bad(format!("filter `{key}`: give {what}")))
            } else {
                Ok(value.to_string())
            }
        };
        match key {
            "from" => once(&mut self.from, key, workload(key, value)?),
            "to" => once(&mut self.to, key, workload(key, value)?),
            "from-namespace" => once(&mut self.from_namespace, key, text("a namespace")?),
            "to-namespace" => once(&mut self.to_namespace, key, text("a namespace")?),
            "identity" => once(&mut self.identity, key, text("an identity")?),
            "method" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(bad(format!(
                        "filter `method`: `{value}` is not an HTTP method (like GET or POST)"
                    )));
                }
                once(&mut self.method, key, value.to_ascii_uppercase())
            }
            "path" => {
                if !value.starts_with('/') {
                    return Err(bad(format!(
                        "filter `path`: `{value}` is not a path prefix; it starts with /"
                    )));
                }
                once(&mut self.path_prefix, key, value.to_string())
            }
            "authority" => once(&mut self.authority, key, text("a host or host:port")?),
            "status" => {
                let class = match value.as_bytes() {
                    [d @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => u16::from(d - b'0'),
                    _ => {
                        return Err(bad(format!(
                            "filter `status`: `{value}` is not a status class; give 1xx, 2xx, 3xx, 4xx or 5xx"
                        )));
                    }
                };
                once(&mut self.status_class, key, class)
            }
            "decision" => {
                let verdict = match value {
                    "allow" => Verdict::Allow,
                    "deny" => Verdict::Deny,
                    "no_route" => Verdict::NoRoute,
                    _ => {
                        return Err(bad(format!(
                            "filter `decision`: `{value}` is not a decision; give allow, deny or no_route"
                        )));
                    }
                };
                once(&mut self.decision, key, verdict)
            }
            "subject" => once(&mut self.subject, key, text("an Avro subject")?),
            "invalid" => {
                self.invalid_only = match value {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(bad(format!(
                            "filter `invalid`: `{value}` is not true or false"
                        )));
                    }
                };
                Ok(())
            }
            "rate" => {
                let rate = value
                    .parse::<u32>()
                    .ok()
                    .filter(|r| (1..=MAX_RATE).contains(r))
                    .ok_or_else(|| {
                        bad(format!(
                            "filter `rate`: `{value}` is not a number of events per second from 1 to {MAX_RATE}"
                        ))
                    })?;
                once(&mut self.rate, key, rate)
            }
            other => Err(bad(format!(
                "unknown filter `{other}`; known: {}",
                KEYS.join(", ")
            ))),
        }
    }

    /// The query that parses back to this filter (percent-encoded, no leading `?`).
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let w = |r: &WorkloadRef| format!("{}/{}", r.namespace, r.name);
        if let Some(r) = &self.from {
            pairs.push(("from", w(r)));
        }
        if let Some(r) = &self.to {
            pairs.push(("to", w(r)));
        }
        let mut push = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        };
        push("from-namespace", &self.from_namespace);
        push("to-namespace", &self.to_namespace);
        push("identity", &self.identity);
        push("method", &self.method);
        push("path", &self.path_prefix);
        push("authority", &self.authority);
        if let Some(c) = self.status_class {
            pairs.push(("status", format!("{c}xx")));
        }
        if let Some(d) = self.decision {
            pairs.push(("decision", d.as_str().to_string()));
        }
        if let Some(s) = &self.subject {
            pairs.push(("subject", s.clone()));
        }
        if self.invalid_only {
            pairs.push(("invalid", "true".to_string()));
        }
        if let Some(r) = self.rate {
            pairs.push(("rate", r.to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Whether `event` passes every condition that is set. Lost notices always pass.
    pub fn matches(&self, e: &Event) -> bool {
        if e.kind == EventKind::Lost {
            return true;
        }
        let http = e.http.as_ref();
        let (source_ns, source_name) = side(e, &e.source, Direction::Outbound);
        let (dest_ns, dest_name) = side(e, &e.destination, Direction::Inbound);
        if let Some(r) = &self.from
            && (source_ns != Some(&r.namespace) || source_name != Some(&r.name))
        {
            return false;
        }
        if let Some(r) = &self.to
            && (dest_ns != Some(&r.namespace) || dest_name != Some(&r.name))
        {
            return false;
        }
        if let Some(ns) = &self.from_namespace
            && source_ns != Some(ns.as_str())
        {
            return false;
        }
        if let Some(ns) = &self.to_namespace
            && dest_ns != Some(ns.as_str())
        {
            return false;
        }
        if let Some(id) = &self.identity
            && e.source.identity.as_deref() != Some(id.as_str())
            && e.destination.identity.as_deref() != Some(id.as_str())
        {
            return false;
        }
        if let Some(m) = &self.method
            && !http.is_some_and(|h| h.method.eq_ignore_ascii_case(m))
        {
            return false;
        }
        if let Some(p) = &self.path_prefix
            && !http.is_some_and(|h| h.path.starts_with(p.as_str()))
        {
            return false;
        }
        if let Some(a) = &self.authority
            && !http.is_some_and(|h| h.authority.eq_ignore_ascii_case(a))
        {
            return false;
        }
        if let Some(class) = self.status_class
            && http.and_then(|h| h.status).is_none_or(|s| s / 100 != class)
        {
            return false;
        }
        if let Some(v) = self.decision
            && e.decision.as_ref().is_none_or(|d| d.verdict != v.as_str())
        {
            return false;
        }
        if let Some(s) = &self.subject
            && !e
                .avro
                .iter()
                .any(|i| i.subject.as_deref() == Some(s.as_str()))
        {
            return false;
        }
        if self.invalid_only && !e.avro.iter().any(|i| !i.valid) {
            return false;
        }
        true
    }

    /// The token bucket for `rate`, when one is set.
    pub fn limiter(&self) -> Option<RateLimiter> {
        self.rate.map(RateLimiter::new)
    }
}

/// Namespace and workload name of one side of an event. The proxy's own side is its
/// workload (`event.proxy`); a peer known only by its Linkerd identity
/// (`<sa>.<ns>.serviceaccount.identity...`) is taken to be in `ns` with its service account
/// standing in for its workload name, the usual one-account-per-workload convention.
fn side<'e>(
    e: &'e Event,
    endpoint: &'e Endpoint,
    own_side_when: Direction,
) -> (Option<&'e str>, Option<&'e str>) {
    if let (Some(ns), Some(name)) = (&endpoint.namespace, &endpoint.workload) {
        return (Some(ns), Some(name));
    }
    if e.direction == own_side_when
        && let Some((ns, name)) = e.proxy.split_once('/')
    {
        return (Some(ns), Some(name));
    }
    let from_identity = endpoint.identity.as_deref().and_then(|id| {
        let mut parts = id.splitn(3, '.');
        let sa = parts.next()?;
        let ns = parts.next()?;
        parts
            .next()?
            .starts_with("serviceaccount.")
            .then_some((ns, sa))
    });
    (
        endpoint
            .namespace
            .as_deref()
            .or(from_identity.map(|(ns, _)| ns)),
        endpoint
            .workload
            .as_deref()
            .or(from_identity.map(|(_, sa)| sa)),
    )
}

fn workload(key: &str, value: &str) -> Result<WorkloadRef, FilterError> {
    match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(WorkloadRef {
                namespace: ns.to_string(),
                name: name.to_string(),
            })
        }
        _ => Err(bad(format!(
            "filter `{key}`: `{value}` is not namespace/workload (like shop/orders); for a whole namespace use `{key}-namespace`"
        ))),
    }
}

/// Events per second with a burst of one second's worth; what it refuses the caller counts
/// as lost.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        let rate = f64::from(per_second.max(1));
        RateLimiter {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    pub fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Splits a URL query into decoded pairs (`+` is a space, as in forms).
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, FilterError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(bad(format!(
            "the query is {} bytes, more than the limit of {MAX_QUERY_BYTES}",
            query.len()
        )));
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, FilterError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "`{s}` has a `%` not followed by two hex digits at byte {i}"
                        ))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(format!("`{s}` does not decode to UTF-8")))
}

/// Everything but RFC 3986's unreserved characters and `/` is escaped.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tap::{Decision, Http, Inspection};

    const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
    const ORDERS: &str = "orders.shop.serviceaccount.identity.linkerd.cluster.local";

    /// An inbound response end at shop/orders from web, as the orders proxy reports it.
    fn inbound(status: u16) -> Event {
        let mut e = Event::lost(0, 1);
        e.kind = EventKind::ResponseEnd;
        e.proxy = "shop/orders".into();
        e.direction = Direction::Inbound;
        e.source.identity = Some(WEB.into());
        e.destination = Endpoint {
            addr: "127.0.0.1:8080".into(),
            namespace: Some("shop".into()),
            workload: Some("orders".into()),
            identity: Some(ORDERS.into()),
        };
        e.http = Some(Http {
            method: "POST".into(),
            authority: "Orders.shop:80".into(),
            path: "/v1/orders/7".into(),
            status: Some(status),
            ..Http::default()
        });
        e.decision = Some(Decision {
            verdict: "deny".into(),
            server_kind: "server".into(),
            server_name: "orders-http".into(),
            route_kind: None,
            route_name: None,
            authz_kind: None,
            authz_name: None,
            reason: String::new(),
            tried: Vec::new(),
        });
        e.avro = vec![Inspection {
            subject: Some("shop.orders-value".into()),
            valid: false,
            ..Inspection::default()
        }];
        e
    }

    fn passes(query: &str, e: &Event) -> bool {
        Filter::from_query(query).unwrap().matches(e)
    }

    #[test]
    fn each_condition_can_pass_and_can_fail() {
        let e = inbound(503);
        for (yes, no) in [
            ("to=shop/orders", "to=shop/web"),
            ("from=shop/web", "from=shop/orders"),
            ("from-namespace=shop", "from-namespace=other"),
            ("to-namespace=shop", "to-namespace=other"),
            (
                &format!("identity={WEB}"),
                "identity=x.shop.serviceaccount.identity.l.c",
            ),
            (&format!("identity={ORDERS}"), "identity=web"),
            ("method=post", "method=GET"),
            ("path=/v1/orders", "path=/v2"),
            ("authority=orders.shop:80", "authority=orders.shop"),
            ("status=5xx", "status=4xx"),
            ("decision=deny", "decision=allow"),
            ("subject=shop.orders-value", "subject=shop.other-value"),
            ("invalid=true", "invalid=true&method=GET"),
        ] {
            assert!(passes(yes, &e), "{yes}");
            assert!(!passes(no, &e), "{no}");
        }
        let mut valid = e.clone();
        valid.avro[0].valid = true;
        assert!(!passes("invalid=true", &valid));
        assert!(passes("invalid=false", &valid));
        assert!(passes(
            "to=shop/orders&status=5xx&subject=shop.orders-value&invalid=true&rate=100",
            &e
        ));
    }

    #[test]
    fn events_without_the_field_do_not_match_it_and_lost_notices_always_do() {
        let mut start = inbound(200);
        start.kind = EventKind::RequestStart;
        start.http.as_mut().unwrap().status = None;
        assert!(!passes("status=2xx", &start));
        let mut outbound = inbound(200);
        outbound.decision = None;
        assert!(!passes("decision=allow", &outbound));
        let lost = Event::lost(3, 0);
        for q in [
            "to=a/b",
            "status=5xx&decision=deny",
            "invalid=true",
            "method=GET",
        ] {
            assert!(passes(q, &lost), "{q}");
        }
    }

    #[test]
    fn the_proxy_side_is_the_proxy_workload_and_identities_name_peers() {
        // An outbound event from web's proxy: source fields unset, destination known.
        let mut e = inbound(200);
        e.direction = Direction::Outbound;
        e.proxy = "shop/web".into();
        e.source = Endpoint::default();
        assert!(passes("from=shop/web", &e));
        // A peer with only an identity: its namespace and service account.
        let mut e = inbound(200);
        e.destination.namespace = None;
        e.destination.workload = None;
        e.direction = Direction::Outbound;
        assert!(passes("to=shop/orders&to-namespace=shop", &e));
        e.destination.identity = Some("spiffe://elsewhere/x".into());
        assert!(!passes("to-namespace=shop", &e));
    }

    #[test]
    fn bad_values_are_one_clear_line() {
        for (q, message) in [
            (
                "status=6xx",
                "filter `status`: `6xx` is not a status class; give 1xx, 2xx, 3xx, 4xx or 5xx",
            ),
            (
                "to=orders",
                "filter `to`: `orders` is not namespace/workload (like shop/orders); for a whole namespace use `to-namespace`",
            ),
            (
                "rate=0",
                "filter `rate`: `0` is not a number of events per second from 1 to 100000",
            ),
            (
                "decision=maybe",
                "filter `decision`: `maybe` is not a decision; give allow, deny or no_route",
            ),
            (
                "path=v1",
                "filter `path`: `v1` is not a path prefix; it starts with /",
            ),
            (
                "method=G%20T",
                "filter `method`: `G T` is not an HTTP method (like GET or POST)",
            ),
            (
                "color=red",
                "unknown filter `color`; known: from, to, from-namespace, to-namespace, identity, method, path, authority, status, decision, subject, invalid, rate",
            ),
            ("to=a/b&to=c/d", "filter `to` is given twice; give it once"),
            (
                "path=%2",
                "`%2` has a `%` not followed by two hex digits at byte 0",
            ),
            (
                "invalid=yes",
                "filter `invalid`: `yes` is not true or false",
            ),
        ] {
            assert_eq!(
                Filter::from_query(q).unwrap_err().to_string(),
                message,
                "{q}"
            );
        }
        let long = format!("path=/{}", "a".repeat(MAX_QUERY_BYTES));
        assert!(Filter::from_query(&long).is_err());
    }

    #[test]
    fn to_query_parses_back_to_the_same_filter() {
        let q = "from=shop/web&to=shop/orders&from-namespace=a&to-namespace=b&identity=x.y&method=post&path=/v1/a%20b%26c&authority=orders:80&status=4xx&decision=no_route&subject=s-value&invalid=true&rate=5";
        let f = Filter::from_query(q).unwrap();
        assert_eq!(f.path_prefix.as_deref(), Some("/v1/a b&c"));
        assert_eq!(f.method.as_deref(), Some("POST"));
        assert_eq!(Filter::from_query(&f.to_query()).unwrap(), f);
        assert_eq!(Filter::default().to_query(), "");
        assert_eq!(Filter::from_query("").unwrap(), Filter::default());
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_the_rate() {
        let mut l = RateLimiter::new(10);
        let t0 = l.last;
        let admitted = (0..30).filter(|_| l.admit(t0)).count();
        assert_eq!(admitted, 10);
        assert!(!l.admit(t0 + Duration::from_millis(50)));
        assert!(l.admit(t0 + Duration::from_millis(150)));
        // A long pause refills to one second's worth, not more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..30).filter(|_| l.admit(later)).count(), 10);
    }
}
