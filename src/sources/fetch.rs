//! Getting metrics text: an HTTP GET of a proxy's `/metrics` (or any URL), bounded in time
//! and size, or a file. Every error is one line naming the URL or file.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::header::{ACCEPT, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::SourceError;
use super::metrics::{Scrape, Workload};
use super::prom_text;

/// Connecting, and then the whole answer, must each take no longer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A proxy with many peers answers a few MiB; more is not a metrics page.
pub const MAX_BODY: usize = 64 << 20;

/// Where one proxy's metrics come from: `[NS/NAME=]URL-or-FILE`. The workload names the
/// scraped proxy, which its own series do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsTarget {
    pub workload: Option<Workload>,
    pub location: String,
}

impl std::str::FromStr for MetricsTarget {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<MetricsTarget, SourceError> {
        let (workload, location) = match s.split_once('=') {
            Some((w, rest)) if !w.contains(':') => (Some(w.parse()?), rest),
            _ => (None, s),
        };
        if location.is_empty() {
            return Err(SourceError::Target(format!("`{s}` names no URL or file")));
        }
        Ok(MetricsTarget {
            workload,
            location: location.to_string(),
        })
    }
}

impl MetricsTarget {
    pub fn is_url(&self) -> bool {
        self.location.starts_with("http://") || self.location.starts_with("https://")
    }

    /// Reads the target once: a GET for a URL, a read for a file.
    pub async fn read(&self) -> Result<Scrape, SourceError> {
        let (text, instance) = if self.is_url() {
            let uri = parse_url(&self.location)?;
            let instance = uri.authority().map(|a| a.to_string()).unwrap_or_default();
            (get(&self.location, "text/plain").await?, instance)
        } else {
            (read_file(&self.location)?, self.location.clone())
        };
        let exposition = prom_text::parse(&text).map_err(|e| SourceError::File {
            path: self.location.clone(),
            message: e.to_string(),
        })?;
        Ok(Scrape {
            workload: self.workload.clone(),
            instance,
            samples: exposition.samples,
        })
    }
}

fn read_file(path: &str) -> Result<String, SourceError> {
    let err = |message: String| SourceError::File {
        path: path.to_string(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_BODY as u64 {
        return Err(err(format!("larger than {} MiB", MAX_BODY >> 20)));
    }
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(format!("not UTF-8 text: {e}")))
}

/// A plain-HTTP URL, checked.
pub fn parse_url(url: &str) -> Result<Uri, SourceError> {
    let err = |message: &str| SourceError::Fetch {
        url: url.to_string(),
        message: message.to_string(),
    };
    let uri: Uri = url.parse().map_err(|_| err("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(err(
                "https is not supported; reach it over plain HTTP (e.g. kubectl port-forward)",
            ));
        }
        _ => return Err(err("only http:// URLs are supported")),
    }
    if uri.authority().is_none() {
        return Err(err("the URL has no host"));
    }
    Ok(uri)
}

/// GETs `url` and returns its body as text; anything but `200 OK` is an error carrying the
/// first line of the answer.
pub async fn get(url: &str, accept: &str) -> Result<String, SourceError> {
    let (status, body) = get_any(url, accept).await?;
    if status != StatusCode::OK {
        let first = body.lines().next().unwrap_or("").trim();
        return Err(SourceError::Fetch {
            url: url.to_string(),
            message: format!("HTTP {}: {}", status.as_u16(), clip(first)),
        });
    }
    Ok(body)
}

/// GETs `url` and returns the status and body whatever the status (an API that explains
/// its errors in a JSON body).
pub async fn get_any(url: &str, accept: &str) -> Result<(StatusCode, String), SourceError> {
    let err = |message: String| SourceError::Fetch {
        url: url.to_string(),
        message,
    };
    let uri = parse_url(url)?;
    let authority = uri.authority().expect("checked").clone();
    let port = authority.port_u16().unwrap_or(80);
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((authority.host(), port)))
        .await
        .map_err(|_| err(format!("connect timed out after {}s", TIMEOUT.as_secs())))?
        .map_err(|e| err(format!("cannot connect: {e}")))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(HOST, authority.as_str())
        .header(ACCEPT, accept)
        .body(Empty::<Bytes>::new())
        .map_err(|e| err(format!("bad request: {e}")))?;
    let answer = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        let text = String::from_utf8(body.to_vec())
            .map_err(|e| format!("the answer is not UTF-8 text: {e}"))?;
        Ok::<_, String>((status, text))
    };
    tokio::time::timeout(TIMEOUT, answer)
        .await
        .map_err(|_| err(format!("no full answer within {}s", TIMEOUT.as_secs())))?
        .map_err(err)
}

/// At most 200 characters of an answer, so an error stays one line.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_may_name_their_workload() {
        let t: MetricsTarget = "shop/web=http://127.0.0.2:4191/metrics".parse().unwrap();
        assert_eq!(t.workload.unwrap().name, "web");
        assert_eq!(t.location, "http://127.0.0.2:4191/metrics");
        let t: MetricsTarget = "http://127.0.0.2:4191/metrics?x=1".parse().unwrap();
        assert!(t.workload.is_none() && t.is_url());
        let t: MetricsTarget = "saved.txt".parse().unwrap();
        assert!(!t.is_url());
        let e = "web=x.txt"
            .parse::<MetricsTarget>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("write NAMESPACE/NAME"), "{e}");
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(parse_url("http://127.0.0.1:9090/").is_ok());
        let e = parse_url("https://prom:9090").unwrap_err().to_string();
        assert!(
            e.starts_with("https://prom:9090: https is not supported"),
            "{e}"
        );
        assert!(parse_url("ftp://x/").is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_one_line_naming_the_url() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/metrics");
        let e = get(&url, "text/plain").await.unwrap_err().to_string();
        assert!(e.starts_with(&format!("{url}: cannot connect")), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = read_file("/nonexistent/metrics.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/metrics.txt: "), "{e}");
    }
}
