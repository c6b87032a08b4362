//! The REST server: hyper 1 HTTP/1.1 over tokio. Reads (`GET`) are answered on the runtime
//! thread straight from memory; anything that may write runs on the blocking pool, since it
//! fsyncs. Request bodies are capped; content types are checked the way Confluent's
//! resources declare them.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::api::{self, ACCEPTED_CONTENT_TYPES};
use super::error::RegistryError;
use super::store::Store;

/// The largest request body accepted (Confluent's default is far below this).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Serves `store` on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| respond(store.clone(), req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = closing_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 5 s; closing them");
    }
    Ok(())
}

async fn respond(
    store: Arc<Store>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if let Some(e) = unsupported_content_type(&req) {
        return Ok(reply(api::Response::error(&e)));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let error = if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                RegistryError::TooLarge(MAX_BODY)
            } else {
                RegistryError::BadRequest(format!("could not read the request body: {e}"))
            };
            return Ok(reply(api::Response::error(&error)));
        }
    };
    let response = if api::may_write(&method) {
        let task = tokio::task::spawn_blocking(move || {
            api::handle(
                &store,
                &api::Request {
                    method: &method,
                    path: &path,
                    query: &query,
                    body: &body,
                },
            )
        });
        match task.await {
            Ok(r) => r,
            Err(e) => api::Response::error(&RegistryError::store(
                "request",
                format!("the request handler failed: {e}"),
            )),
        }
    } else {
        api::handle(
            &store,
            &api::Request {
                method: &method,
                path: &path,
                query: &query,
                body: &body,
            },
        )
    };
    Ok(reply(response))
}

fn reply(r: api::Response) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(r.body)));
    *response.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(api::CONTENT_TYPE));
    response
}

/// A request body in a content type the API does not read (415). A missing content type is
/// accepted.
fn unsupported_content_type(req: &Request<Incoming>) -> Option<RegistryError> {
    let value = req.headers().get(CONTENT_TYPE)?;
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if ACCEPTED_CONTENT_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(essence))
    {
        return None;
    }
    Some(RegistryError::UnsupportedMediaType(format!(
        "HTTP 415 Unsupported Media Type: the body is {text:?}; send {} (curl: -H 'Content-Type: {}')",
        api::CONTENT_TYPE,
        api::CONTENT_TYPE
    )))
}
