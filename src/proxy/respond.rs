//! Answers the proxy gives itself, shaped as Linkerd's: denials (403, or gRPC
//! PERMISSION_DENIED in a trailers-only response), no route (404 / NOT_FOUND), and proxy
//! errors with `l5d-proxy-error` saying what went wrong.

use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::{ProxyBody, empty, full};

pub const PROXY_ERROR: &str = "l5d-proxy-error";
pub const UNAUTHORIZED: &str = "unauthorized request on route";
pub const NO_ROUTE: &str = "no route found for request";

const GRPC_PERMISSION_DENIED: u32 = 7;
const GRPC_NOT_FOUND: u32 = 5;
const GRPC_UNAVAILABLE: u32 = 14;
const GRPC_DEADLINE_EXCEEDED: u32 = 4;
const GRPC_INVALID_ARGUMENT: u32 = 3;
const GRPC_RESOURCE_EXHAUSTED: u32 = 8;

/// A policy denial. `meshed`: the client proved an identity, so it may see the reason.
pub fn denied(grpc: bool, meshed: bool) -> Response<ProxyBody> {
    if grpc {
        return grpc_error(GRPC_PERMISSION_DENIED, UNAUTHORIZED, meshed);
    }
    let mut r = bare(StatusCode::FORBIDDEN);
    if meshed {
        r.headers_mut()
            .insert(PROXY_ERROR, HeaderValue::from_static(UNAUTHORIZED));
    }
    r
}

pub fn no_route(grpc: bool) -> Response<ProxyBody> {
    if grpc {
        return grpc_error(GRPC_NOT_FOUND, NO_ROUTE, true);
    }
    let mut r = bare(StatusCode::NOT_FOUND);
    r.headers_mut()
        .insert(PROXY_ERROR, HeaderValue::from_static(NO_ROUTE));
    r
}

/// The proxy could not get an answer from upstream, or refuses the request itself: the
/// status, `l5d-proxy-error: <message>`, and the message as a text body (gRPC: the matching
/// status in a trailers-only response).
pub fn error(status: StatusCode, message: &str, grpc: bool) -> Response<ProxyBody> {
    if grpc {
        let code = match status {
            StatusCode::GATEWAY_TIMEOUT => GRPC_DEADLINE_EXCEEDED,
            StatusCode::PAYLOAD_TOO_LARGE => GRPC_RESOURCE_EXHAUSTED,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => GRPC_INVALID_ARGUMENT,
            _ => GRPC_UNAVAILABLE,
        };
        return grpc_error(code, message, true);
    }
    let text = format!("meshlens proxy: {message}\n");
    let mut r = Response::new(full(text.clone()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    if let Ok(v) = HeaderValue::from_str(&header_safe(message)) {
        h.insert(PROXY_ERROR, v);
    }
    r
}

/// A refusal with a long explanation: its first line in `l5d-proxy-error`, all of it in the
/// body (gRPC: the first line as the status message).
pub fn explained(status: StatusCode, text: &str, grpc: bool) -> Response<ProxyBody> {
    let first = text.lines().next().unwrap_or("");
    if grpc {
        return error(status, first, true);
    }
    let mut r = Response::new(full(text.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    if let Ok(v) = HeaderValue::from_str(&header_safe(first)) {
        h.insert(PROXY_ERROR, v);
    }
    r
}

fn bare(status: StatusCode) -> Response<ProxyBody> {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

fn grpc_error(code: u32, message: &str, with_message: bool) -> Response<ProxyBody> {
    let mut r = Response::new(empty());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(code));
    if with_message && let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    r
}

/// Header values may not hold control characters; messages are one line anyway.
fn header_safe(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() || !c.is_ascii() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// gRPC's `grpc-message` is percent-encoded outside printable ASCII and `%`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_look_like_linkerds() {
        let r = denied(false, true);
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[PROXY_ERROR], UNAUTHORIZED);
        assert_eq!(r.headers()[CONTENT_LENGTH], "0");
        assert!(denied(false, false).headers().get(PROXY_ERROR).is_none());
        let g = denied(true, true);
        assert_eq!(
            (g.status(), &g.headers()["grpc-status"]),
            (StatusCode::OK, &"7".parse::<HeaderValue>().unwrap())
        );
        assert_eq!(no_route(false).status(), 404);
        assert_eq!(no_route(true).headers()["grpc-status"], "5");
    }

    #[test]
    fn errors_say_what_went_wrong_in_one_header_line() {
        let r = error(
            StatusCode::BAD_GATEWAY,
            "connection refused\nby 127.0.0.1:1",
            false,
        );
        assert_eq!(r.status(), 502);
        assert_eq!(
            r.headers()[PROXY_ERROR],
            "connection refused by 127.0.0.1:1"
        );
        assert_eq!(
            error(StatusCode::GATEWAY_TIMEOUT, "t", true).headers()["grpc-status"],
            "4"
        );
        assert_eq!(percent_encode("50% é"), "50%25 %C3%A9");
    }
}
