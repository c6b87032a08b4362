//! The tap filter's small query language, parsed once and matched against each event:
//! `to:orders status:5xx subject:OrderPlaced invalid -method:GET`. Terms are ANDed; a
//! leading `-` negates one. Text is compared without regard to ASCII case.
//!
//! | term | matches when |
//! | --- | --- |
//! | `from:x`, `to:x` | the source / destination `namespace/workload` contains `x` |
//! | `ns:x` | either side is in namespace `x` |
//! | `id:x` | either side's mTLS identity contains `x` |
//! | `method:x` | the HTTP method is `x` |
//! | `path:x` | the HTTP path starts with `x` |
//! | `authority:x` | the HTTP authority contains `x` |
//! | `status:200`, `status:5xx` | the response status is that code or in that class |
//! | `decision:allow`, `decision:deny`, `allow`, `deny` | the policy allowed / did not allow it |
//! | `subject:x` | an Avro message's subject contains `x` |
//! | `invalid` | an Avro message failed its checks |
//! | `drift`, `drift:x` | an Avro message drifted from its reader (any verdict but `same`, or `x`) |
//! | anything else | the path or either side's `namespace/workload` contains it |

use std::fmt;

use crate::tap::{Endpoint, Event};

/// The keys a `key:value` term may use, as the error message suggests them.
const KEYS: [&str; 11] = [
    "from",
    "to",
    "ns",
    "id",
    "method",
    "path",
    "authority",
    "status",
    "decision",
    "subject",
    "drift",
];

/// A one-line summary of the syntax, for a tooltip.
pub const SYNTAX_HELP: &str = "Terms are combined with AND; prefix one with - to negate it.\n\
from:web  to:shop/orders  ns:shop  id:web.shop  (workload or namespace/workload, identity)\n\
method:POST  path:/orders (prefix)  authority:orders:8080\n\
status:200  status:5xx  decision:deny (or just deny / allow)\n\
subject:OrderPlaced  invalid  drift  drift:incompatible\n\
Any other word is looked for in the path and the workload names.";

/// A parsed filter; the empty query matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negated: bool,
    test: Test,
}

/// What one term checks. Needles are stored lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    From(String),
    To(String),
    Namespace(String),
    Identity(String),
    Method(String),
    PathPrefix(String),
    Authority(String),
    Status(Status),
    Allowed(bool),
    Subject(String),
    Invalid,
    Drift(Option<String>),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Code(u16),
    /// `5` for `5xx`.
    Class(u16),
}

/// Why a query did not parse: the offending term and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub term: String,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let terms = text
            .split_whitespace()
            .map(parse_term)
            .collect::<Result<_, _>>()?;
        Ok(Query { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, e: &Event) -> bool {
        self.terms.iter().all(|t| t.test.matches(e) != t.negated)
    }
}

fn parse_term(raw: &str) -> Result<Term, QueryError> {
    let (negated, body) = match raw.strip_prefix('-') {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, raw),
    };
    let error = |message: String| QueryError {
        term: raw.to_string(),
        message,
    };
    let test = match body.split_once(':') {
        None => match body.to_ascii_lowercase().as_str() {
            "invalid" => Test::Invalid,
            "drift" => Test::Drift(None),
            "allow" | "allowed" => Test::Allowed(true),
            "deny" | "denied" => Test::Allowed(false),
            text => Test::Text(text.to_string()),
        },
        Some((key, value)) => {
            let key = key.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                return Err(error(unknown_key(&key)));
            }
            if value.is_empty() {
                return Err(error(format!(
                    "`{key}:` needs a value, e.g. {}",
                    example(&key)
                )));
            }
            let value = value.to_ascii_lowercase();
            match key.as_str() {
                "from" => Test::From(value),
                "to" => Test::To(value),
                "ns" => Test::Namespace(value),
                "id" => Test::Identity(value),
                "method" => Test::Method(value),
                "path" => Test::PathPrefix(value),
                "authority" => Test::Authority(value),
                "subject" => Test::Subject(value),
                "drift" => Test::Drift(Some(value)),
                "status" => Test::Status(parse_status(&value).ok_or_else(|| {
                    error(format!(
                        "`{value}` is not a status: write a code like 200 or a class like 5xx"
                    ))
                })?),
                "decision" => match value.as_str() {
                    "allow" | "allowed" => Test::Allowed(true),
                    "deny" | "denied" => Test::Allowed(false),
                    _ => {
                        return Err(error(format!(
                            "`decision:{value}` — a decision is allow or deny"
                        )));
                    }
                },
                _ => unreachable!("every key in KEYS has an arm"),
            }
        }
    };
    Ok(Term { negated, test })
}

fn example(key: &str) -> &'static str {
    match key {
        "from" => "from:web",
        "to" => "to:shop/orders",
        "ns" => "ns:shop",
        "id" => "id:web.shop",
        "method" => "method:POST",
        "path" => "path:/orders",
        "authority" => "authority:orders",
        "status" => "status:5xx",
        "decision" => "decision:deny",
        "subject" => "subject:OrderPlaced",
        _ => "drift:incompatible",
    }
}

fn parse_status(v: &str) -> Option<Status> {
    if let Some(class) = v.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(c @ 1..=5) if class.len() == 1 => Some(Status::Class(c)),
            _ => None,
        };
    }
    match v.parse::<u16>() {
        Ok(code @ 100..=599) => Some(Status::Code(code)),
        _ => None,
    }
}

/// "unknown key `stauts` — try status:", naming the nearest key when one is close.
fn unknown_key(key: &str) -> String {
    let nearest = KEYS
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .min()
        .filter(|(d, k)| *d <= 2.max(k.len() / 3));
    match nearest {
        Some((_, k)) => format!("unknown key `{key}` — try {k}:"),
        None => format!(
            "unknown key `{key}` — the keys are {}",
            KEYS.join(": ") + ":"
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `needle` is lowercase ASCII-wise; `hay` may be any case.
fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn starts_with(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .get(..needle.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The endpoint's namespace, from its own field or else from the identity it proved.
fn namespace(e: &Endpoint) -> Option<&str> {
    e.namespace.as_deref().or_else(|| {
        let (sa_ns, _) = e.identity.as_deref()?.split_once(".serviceaccount.")?;
        sa_ns.split_once('.').map(|(_, ns)| ns)
    })
}

/// Does `namespace/workload` (or just the workload, or the address when neither is known)
/// contain `needle`?
fn endpoint_contains(e: &Endpoint, needle: &str) -> bool {
    let Some(w) = &e.workload else {
        let name = e
            .identity
            .as_deref()
            .and_then(|i| i.split_once(".serviceaccount."))
            .map_or(e.addr.as_str(), |(sa_ns, _)| sa_ns);
        return contains(name, needle);
    };
    if contains(w, needle) {
        return true;
    }
    match (namespace(e), needle.split_once('/')) {
        (Some(ns), Some((n_ns, n_w))) => contains(ns, n_ns) && starts_with(w, n_w),
        _ => false,
    }
}

impl Test {
    fn matches(&self, e: &Event) -> bool {
        let http = e.http.as_ref();
        match self {
            Test::From(n) => endpoint_contains(&e.source, n),
            Test::To(n) => endpoint_contains(&e.destination, n),
            Test::Namespace(n) => [&e.source, &e.destination]
                .into_iter()
                .any(|ep| namespace(ep).is_some_and(|ns| ns.eq_ignore_ascii_case(n))),
            Test::Identity(n) => [&e.source, &e.destination]
                .into_iter()
                .any(|ep| ep.identity.as_deref().is_some_and(|i| contains(i, n))),
            Test::Method(n) => http.is_some_and(|h| h.method.eq_ignore_ascii_case(n)),
            Test::PathPrefix(n) => http.is_some_and(|h| starts_with(&h.path, n)),
            Test::Authority(n) => http.is_some_and(|h| contains(&h.authority, n)),
            Test::Status(s) => http.and_then(|h| h.status).is_some_and(|code| match s {
                Status::Code(c) => code == *c,
                Status::Class(c) => code / 100 == *c,
            }),
            Test::Allowed(allowed) => e
                .decision
                .as_ref()
                .is_some_and(|d| (d.verdict == "allow") == *allowed),
            Test::Subject(n) => e
                .avro
                .iter()
                .any(|a| a.subject.as_deref().is_some_and(|s| contains(s, n))),
            Test::Invalid => e.avro.iter().any(|a| !a.valid),
            Test::Drift(None) => e
                .avro
                .iter()
                .any(|a| a.drift.as_deref().is_some_and(|d| d != "same")),
            Test::Drift(Some(n)) => e.avro.iter().any(|a| {
                a.drift
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(n))
            }),
            Test::Text(n) => {
                http.is_some_and(|h| contains(&h.path, n))
                    || endpoint_contains(&e.source, n)
                    || endpoint_contains(&e.destination, n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::{inspection, request};
    use crate::tap::Direction;

    /// Response end of web → orders (shop), 503, denied, with an incompatible OrderPlaced.
    fn denied() -> Event {
        let mut e = request(Direction::Inbound, 1, 0, "web", "orders", 503, Some("deny")).remove(2);
        e.avro = vec![inspection("OrderPlaced-value", 3, 1, "incompatible")];
        e
    }

    fn allowed() -> Event {
        request(Direction::Inbound, 2, 0, "web", "payments", 200, None).remove(2)
    }

    fn hits(q: &str) -> (bool, bool) {
        let q = Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        (q.matches(&denied()), q.matches(&allowed()))
    }

    #[test]
    fn the_empty_query_matches_everything() {
        assert!(Query::parse("  ").unwrap().is_empty());
        assert_eq!(hits(""), (true, true));
    }

    #[test]
    fn each_key_matches_its_field() {
        assert_eq!(hits("to:orders"), (true, false));
        assert_eq!(hits("to:demo/ord"), (true, false));
        assert_eq!(hits("to:other/orders"), (false, false));
        assert_eq!(hits("from:WEB"), (true, true));
        assert_eq!(hits("ns:demo"), (true, true));
        assert_eq!(
            hits("ns:dem"),
            (false, false),
            "a namespace is matched whole"
        );
        assert_eq!(hits("id:payments.demo"), (false, true));
        assert_eq!(hits("method:get"), (true, true));
        assert_eq!(hits("path:/ord"), (true, true));
        assert_eq!(
            hits("path:ord"),
            (false, false),
            "a path is matched by prefix"
        );
        assert_eq!(hits("authority:payments"), (false, true));
        assert_eq!(hits("status:5xx"), (true, false));
        assert_eq!(hits("status:200"), (false, true));
        assert_eq!(hits("decision:deny"), (true, false));
        assert_eq!(hits("allowed"), (false, true));
        assert_eq!(hits("subject:orderplaced"), (true, false));
        assert_eq!(hits("invalid"), (true, false));
        assert_eq!(hits("drift"), (true, false));
        assert_eq!(hits("drift:compatible"), (false, false));
        assert_eq!(hits("payments"), (false, true), "free text: workloads");
        assert_eq!(hits("rders"), (true, true), "free text: the path");
    }

    #[test]
    fn terms_are_anded_and_can_be_negated() {
        assert_eq!(hits("to:orders status:5xx invalid"), (true, false));
        assert_eq!(hits("to:orders status:2xx"), (false, false));
        assert_eq!(hits("-to:orders"), (false, true));
        assert_eq!(hits("-deny -invalid"), (false, true));
        assert_eq!(hits("-"), (false, false), "a lone dash is text");
    }

    #[test]
    fn a_tcp_event_has_no_http_to_match() {
        let tcp = crate::mesh::testing::tcp(crate::tap::EventKind::TcpOpen, 1, 0, "web", "db");
        for q in ["method:GET", "path:/", "status:2xx", "authority:db"] {
            assert!(!Query::parse(q).unwrap().matches(&tcp), "{q}");
        }
        assert!(Query::parse("to:db -status:5xx").unwrap().matches(&tcp));
    }

    #[test]
    fn errors_say_what_to_write_instead() {
        let err = |q: &str| Query::parse(q).unwrap_err();
        assert_eq!(
            err("to:orders stauts:5xx").message,
            "unknown key `stauts` — try status:"
        );
        assert_eq!(err("stauts:5xx").term, "stauts:5xx");
        assert!(err("colour:red").message.contains("the keys are from:"));
        assert_eq!(
            err("to:").message,
            "`to:` needs a value, e.g. to:shop/orders"
        );
        assert_eq!(
            err("status:abc").message,
            "`abc` is not a status: write a code like 200 or a class like 5xx"
        );
        assert!(Query::parse("status:6xx").is_err());
        assert!(Query::parse("status:55xx").is_err());
        assert!(Query::parse("status:99").is_err());
        assert_eq!(
            err("decision:maybe").message,
            "`decision:maybe` — a decision is allow or deny"
        );
    }
}
