//! Linkerd's opaque transport header: after the mTLS handshake (ALPN `transport.l5d.io/v1`)
//! the client proxy writes `transport.l5d.io/v1\r\n\r\n`, a big-endian u32 length and a
//! protobuf `Header { int32 port = 1; string name = 2; }` saying where the bytes are going,
//! since the server side cannot learn the original destination port otherwise.

use tokio::io::{AsyncRead, AsyncReadExt as _};

pub const ALPN: &[u8] = b"transport.l5d.io/v1";
const PREFACE: &[u8] = b"transport.l5d.io/v1\r\n\r\n";
/// Headers are a few bytes; anything longer is not ours.
const MAX_LEN: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub port: u16,
    pub name: Option<String>,
}

impl Header {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = vec![0x08];
        varint(u64::from(self.port), &mut body);
        if let Some(name) = &self.name {
            body.push(0x12);
            varint(name.len() as u64, &mut body);
            body.extend_from_slice(name.as_bytes());
        }
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(body: &[u8]) -> Result<Header, String> {
        let mut port = None;
        let mut name = None;
        let mut at = 0;
        while at < body.len() {
            let key = read_varint(body, &mut at)?;
            match (key >> 3, key & 7) {
                (1, 0) => {
                    let v = read_varint(body, &mut at)?;
                    port = Some(u16::try_from(v).map_err(|_| format!("port {v} out of range"))?);
                }
                (2, 2) => {
                    let len = read_varint(body, &mut at)? as usize;
                    let bytes = body
                        .get(at..at.saturating_add(len))
                        .ok_or("name runs past the header")?;
                    name =
                        Some(String::from_utf8(bytes.to_vec()).map_err(|_| "name is not UTF-8")?);
                    at += len;
                }
                (_, 0) => {
                    read_varint(body, &mut at)?;
                }
                (_, 2) => {
                    let len = read_varint(body, &mut at)? as usize;
                    at = at
                        .checked_add(len)
                        .filter(|&end| end <= body.len())
                        .ok_or("field runs past the header")?;
                }
                (field, wire) => {
                    return Err(format!("field {field} has unsupported wire type {wire}"));
                }
            }
        }
        let port = port.filter(|&p| p != 0).ok_or("the header names no port")?;
        Ok(Header { port, name })
    }

    /// Reads a header from the start of a stream.
    pub async fn read(io: &mut (impl AsyncRead + Unpin)) -> Result<Header, String> {
        let mut preface = [0u8; PREFACE.len()];
        io.read_exact(&mut preface)
            .await
            .map_err(|e| format!("reading the transport header: {e}"))?;
        if preface != PREFACE {
            return Err(
                "the connection does not start with the transport.l5d.io/v1 preface".into(),
            );
        }
        let len = io
            .read_u32()
            .await
            .map_err(|e| format!("reading the transport header: {e}"))?;
        if len > MAX_LEN {
            return Err(format!("transport header of {len} bytes is too long"));
        }
        let mut body = vec![0; len as usize];
        io.read_exact(&mut body)
            .await
            .map_err(|e| format!("reading the transport header: {e}"))?;
        Header::decode(&body)
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("varint runs past the header")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_through_a_stream() {
        let h = Header {
            port: 5432,
            name: Some("postgres.shop.svc.cluster.local".into()),
        };
        let bytes = h.encode();
        assert!(bytes.starts_with(PREFACE));
        let mut rest = &bytes[..];
        assert_eq!(Header::read(&mut rest).await.unwrap(), h);
        assert!(rest.is_empty());
    }

    #[test]
    fn rejects_malformed_headers() {
        assert!(Header::decode(&[]).unwrap_err().contains("no port"));
        assert!(Header::decode(&[0x08, 0xff]).is_err());
        assert!(
            Header::decode(&[0x08, 0x80, 0x80, 0x04])
                .unwrap_err()
                .contains("range")
        );
        assert!(Header::decode(&[0x12, 0x05, b'a']).is_err());
        assert!(Header::decode(&[0x0d, 0, 0, 0, 0]).is_err());
        // Unknown fields are skipped, as protobuf requires.
        assert_eq!(
            Header::decode(&[0x18, 0x01, 0x08, 0x50]).unwrap(),
            Header {
                port: 80,
                name: None
            }
        );
    }
}
