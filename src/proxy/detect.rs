//! Protocol detection from a connection's first bytes, as Linkerd's proxies do it: a TLS
//! ClientHello, the HTTP/2 preface, an HTTP/1 request line, or else opaque TCP.

use tokio::net::TcpStream;

/// What the first bytes of a connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Tls,
    Http2,
    Http1,
    Opaque,
    /// Too few bytes to tell yet.
    NeedMore,
}

pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The most bytes detection looks at before calling a stream opaque.
pub const MAX_DETECT: usize = 1024;

pub fn detect(bytes: &[u8]) -> Detected {
    let Some(&first) = bytes.first() else {
        return Detected::NeedMore;
    };
    // A TLS handshake record: content type 22, legacy version 3.x.
    if first == 0x16 {
        return match bytes.get(1) {
            None => Detected::NeedMore,
            Some(3) => Detected::Tls,
            Some(_) => Detected::Opaque,
        };
    }
    let n = bytes.len().min(H2_PREFACE.len());
    if bytes[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Detected::Http2
        } else {
            Detected::NeedMore
        };
    }
    http1(bytes)
}

/// An HTTP/1 request line: `METHOD SP target SP HTTP/1.x CRLF`, method a token.
fn http1(bytes: &[u8]) -> Detected {
    let method_len = bytes
        .iter()
        .position(|&b| !is_token(b))
        .unwrap_or(bytes.len());
    if method_len == bytes.len() {
        return if method_len < 20 {
            Detected::NeedMore
        } else {
            Detected::Opaque
        };
    }
    if method_len == 0 || bytes[method_len] != b' ' {
        return Detected::Opaque;
    }
    let Some(eol) = bytes.iter().position(|&b| b == b'\n') else {
        return if bytes.len() >= MAX_DETECT {
            Detected::Opaque
        } else {
            Detected::NeedMore
        };
    };
    let line = bytes[..eol].strip_suffix(b"\r").unwrap_or(&bytes[..eol]);
    if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
        Detected::Http1
    } else {
        Detected::Opaque
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Peeks (without consuming) until the first bytes say what the protocol is.
pub async fn peek_protocol(tcp: &TcpStream) -> std::io::Result<Detected> {
    let mut buf = vec![0u8; MAX_DETECT];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before sending anything",
            ));
        }
        match detect(&buf[..n]) {
            Detected::NeedMore if n < MAX_DETECT => {
                // peek returns at once while bytes are buffered: wait for more to arrive.
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Detected::NeedMore => return Ok(Detected::Opaque),
            d => return Ok(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_protocols_apart() {
        assert_eq!(
            detect(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Detected::Http1
        );
        assert_eq!(detect(b"POST /v1/orders?x=1 HTTP/1.0\n"), Detected::Http1);
        assert_eq!(detect(H2_PREFACE), Detected::Http2);
        assert_eq!(detect(&[0x16, 3, 1, 0, 200]), Detected::Tls);
        assert_eq!(
            detect(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
            Detected::Opaque
        );
        assert_eq!(detect(b"SSH-2.0-OpenSSH\r\n"), Detected::Opaque);
        assert_eq!(detect(b"GET / HTTP/2.0\r\n"), Detected::Opaque);
    }

    #[test]
    fn waits_for_enough_bytes() {
        assert_eq!(detect(b""), Detected::NeedMore);
        assert_eq!(detect(b"GE"), Detected::NeedMore);
        assert_eq!(detect(b"GET /long/path"), Detected::NeedMore);
        assert_eq!(detect(b"PRI * HTTP"), Detected::NeedMore);
        assert_eq!(detect(&[0x16]), Detected::NeedMore);
        assert_eq!(detect(&[b'A'; 40]), Detected::Opaque);
        let mut long = b"GET /".to_vec();
        long.resize(MAX_DETECT, b'a');
        assert_eq!(detect(&long), Detected::Opaque);
    }
}
