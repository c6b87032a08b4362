//! Small HTTP facts both proxies need.

use hyper::header::{
    CONNECTION, CONTENT_TYPE, HOST, HeaderMap, HeaderName, TE, TRANSFER_ENCODING, UPGRADE,
};

/// The request's authority: the URI's (HTTP/2, absolute-form) or the Host header.
pub fn authority_of<B>(req: &hyper::Request<B>) -> Option<String> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str().to_string());
    }
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

/// gRPC: `content-type: application/grpc` (or `application/grpc+proto`, ...).
pub fn is_grpc<B>(req: &hyper::Request<B>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Headers that describe one connection and must not be forwarded to the next (RFC 9110
/// §7.6.1), including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    // Names parsed once, not on every call: this runs twice per request in each proxy.
    for name in [
        &CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &TRANSFER_ENCODING,
        &UPGRADE,
    ] {
        headers.remove(name);
    }
    if headers
        .get(TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(TE);
    }
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The protocol as tap names it.
pub fn protocol_name(version: hyper::Version, grpc: bool) -> &'static str {
    match (version, grpc) {
        (_, true) => "gRPC",
        (hyper::Version::HTTP_2, _) => "HTTP/2",
        (hyper::Version::HTTP_10, _) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_connection_headers_and_those_they_name() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("content-type", "avro/binary".parse().unwrap());
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, vec!["content-type", "te"]);
    }

    #[test]
    fn finds_the_authority_and_grpc() {
        let r = hyper::Request::builder()
            .uri("/x")
            .header("host", "orders:8080")
            .header("content-type", "application/grpc+proto")
            .body(())
            .unwrap();
        assert_eq!(authority_of(&r).as_deref(), Some("orders:8080"));
        assert!(is_grpc(&r));
        let r = hyper::Request::builder()
            .uri("http://a:1/x")
            .body(())
            .unwrap();
        assert_eq!(authority_of(&r).as_deref(), Some("a:1"));
    }
}
