//! HTTP/1 connections to plaintext endpoints (the local app, unmeshed destinations), kept by
//! the proxy itself. A request sends straight on a kept connection whose last exchange is
//! over, and the connection is kept again as soon as its response head arrives: no pool
//! task, no dispatch to a pooled client and no task per request waiting to hand the
//! connection back, which hyper-util's pooled client costs on every request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;

use super::body::ProxyBody;
use super::upstream::{UpstreamError, connect_tcp, describe};

/// Connections kept per address; past that, a connection closes when its response ends.
const MAX_KEPT: usize = 256;

/// HTTP/1 connections per address, reused while they stay open and idle for less than the
/// idle timeout.
#[derive(Clone)]
pub struct Http1Pool {
    connect_timeout: Duration,
    source: Option<IpAddr>,
    idle_timeout: Duration,
    kept: Arc<Mutex<Kept>>,
}

#[derive(Default)]
struct Kept {
    by_addr: HashMap<SocketAddr, Vec<Conn>>,
    /// A task is closing connections idle past the timeout.
    reaping: bool,
}

struct Conn {
    sender: http1::SendRequest<ProxyBody>,
    /// When its last response head arrived; a connection that is idle and was kept longer
    /// ago than the idle timeout is closed.
    since: Instant,
}

impl Http1Pool {
    /// `source`: the local address to connect from (`None`: the system's choice).
    pub fn new(connect_timeout: Duration, source: Option<IpAddr>, idle_timeout: Duration) -> Self {
        Http1Pool {
            connect_timeout,
            source,
            idle_timeout,
            kept: Arc::default(),
        }
    }

    /// Sends `req` to `addr` in origin form, with a Host header from the URI's authority
    /// when it has none. A kept connection that turns out closed before the request went
    /// out is dropped and the request tried on another, ending with a new connection.
    pub async fn send(
        &self,
        mut req: Request<ProxyBody>,
        addr: SocketAddr,
    ) -> Result<Response<Incoming>, UpstreamError> {
        origin_form(&mut req);
        loop {
            let (mut sender, reused) = match self.take(addr) {
                Some(sender) => (sender, true),
                None => (self.connect(addr).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(response) => {
                    self.keep(addr, sender);
                    return Ok(response);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Http(describe(&e.into_error()))),
                },
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently kept connection to `addr` that is ready for a request; closed
    /// ones are forgotten on the way.
    fn take(&self, addr: SocketAddr) -> Option<http1::SendRequest<ProxyBody>> {
        let mut kept = self.lock();
        let conns = kept.by_addr.get_mut(&addr)?;
        conns.retain(|c| !c.sender.is_closed());
        let i = conns.iter().rposition(|c| c.sender.is_ready())?;
        Some(conns.swap_remove(i).sender)
    }

    fn keep(&self, addr: SocketAddr, sender: http1::SendRequest<ProxyBody>) {
        let mut kept = self.lock();
        let conns = kept.by_addr.entry(addr).or_default();
        if conns.len() >= MAX_KEPT {
            return;
        }
        conns.push(Conn {
            sender,
            since: Instant::now(),
        });
        if !kept.reaping && !self.idle_timeout.is_zero() {
            kept.reaping = true;
            tokio::spawn(reap(self.kept.clone(), self.idle_timeout));
        }
    }

    async fn connect(
        &self,
        addr: SocketAddr,
    ) -> Result<http1::SendRequest<ProxyBody>, UpstreamError> {
        let connect_error = |error: String| UpstreamError::Connect { addr, error };
        let tcp = tokio::time::timeout(self.connect_timeout, connect_tcp(addr, self.source))
            .await
            .map_err(|_| {
                connect_error(format!(
                    "timed out after {}",
                    humantime::format_duration(self.connect_timeout)
                ))
            })?
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| connect_error(describe(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, "connection to the app ended: {e}");
            }
        });
        Ok(sender)
    }
}

/// Closes connections idle past `timeout`, looking every `timeout` while any are kept.
async fn reap(kept: Arc<Mutex<Kept>>, timeout: Duration) {
    loop {
        tokio::time::sleep(timeout).await;
        let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        for conns in kept.by_addr.values_mut() {
            conns.retain(|c| {
                let idle_too_long = c.sender.is_ready() && c.since.elapsed() >= timeout;
                !c.sender.is_closed() && !idle_too_long
            });
        }
        kept.by_addr.retain(|_, conns| !conns.is_empty());
        if kept.by_addr.is_empty() {
            kept.reaping = false;
            return;
        }
    }
}

/// An HTTP/1 request line names only the path; the authority goes to Host when the request
/// has none.
fn origin_form(req: &mut Request<ProxyBody>) {
    if !req.headers().contains_key(HOST)
        && let Some(a) = req.uri().authority()
    {
        let host = match a.port_u16() {
            Some(80) | None => a.host(),
            Some(_) => a.as_str(),
        };
        if let Ok(host) = HeaderValue::from_str(host) {
            req.headers_mut().insert(HOST, host);
        }
    }
    let mut parts = hyper::http::uri::Parts::default();
    parts.path_and_query = req.uri().path_and_query().cloned();
    *req.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::proxy::body::empty;

    /// An app on 127.0.0.1 answering `200 ok` to each request; each connection closes after
    /// `per_conn` answers. Counts connections and keeps each request's head.
    async fn app(per_conn: usize) -> (SocketAddr, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (c, h) = (conns.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for _ in 0..per_conn {
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tcp.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        h.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&buf).into_owned());
                        buf.clear();
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tcp.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, conns, heads)
    }

    fn pool() -> Http1Pool {
        Http1Pool::new(Duration::from_secs(2), None, Duration::from_secs(90))
    }

    async fn get(pool: &Http1Pool, addr: SocketAddr, path: &str) -> Result<u16, UpstreamError> {
        let req = Request::get(format!("http://{addr}{path}"))
            .body(empty())
            .unwrap();
        let response = pool.send(req, addr).await?;
        let status = response.status().as_u16();
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        Ok(status)
    }

    #[tokio::test]
    async fn sends_in_origin_form_with_a_host_and_reuses_the_connection() {
        let (addr, conns, heads) = app(usize::MAX).await;
        let pool = pool();
        for _ in 0..3 {
            assert_eq!(get(&pool, addr, "/orders?id=7").await.unwrap(), 200);
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        let heads = heads.lock().unwrap();
        assert!(
            heads[0].starts_with("GET /orders?id=7 HTTP/1.1\r\n"),
            "{}",
            heads[0]
        );
        assert!(
            heads[0].contains(&format!("host: {addr}\r\n")),
            "{}",
            heads[0]
        );
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_is_replaced() {
        let (addr, conns, _) = app(1).await;
        let pool = pool();
        assert_eq!(get(&pool, addr, "/").await.unwrap(), 200);
        // Let the kept connection see the app's close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&pool, addr, "/").await.unwrap(), 200);
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_app_that_is_down_is_a_connect_error_naming_it() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = get(&pool(), addr, "/").await.unwrap_err();
        assert_eq!(e.label(), "connect");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot connect to {addr}: ")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_idle_timeout() {
        let (addr, conns, _) = app(usize::MAX).await;
        let pool = Http1Pool::new(Duration::from_secs(2), None, Duration::from_millis(50));
        assert_eq!(get(&pool, addr, "/").await.unwrap(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(pool.lock().by_addr.is_empty());
        assert_eq!(get(&pool, addr, "/").await.unwrap(), 200);
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }
}
