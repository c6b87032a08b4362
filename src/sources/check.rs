//! In-place checks for the app's source forms: each says, in words, what is wrong with one
//! field, or `None` when it is fine. Only metadata is read, never a file's contents.

use std::path::Path;

use super::fetch::MetricsTarget;

/// A file that must exist.
pub fn file(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return Some("give a file".into());
    }
    let path = Path::new(text);
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some(format!("{text} is a directory, not a file")),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!("no file at {text}")),
        Err(e) => Some(format!("cannot read {text}: {e}")),
    }
}

/// A file to create: its directory must exist and the file must not.
pub fn new_file(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return Some("give a file to write".into());
    }
    let path = Path::new(text);
    if path.exists() {
        return Some(format!("{text} already exists; pick a new name"));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Some(format!("no directory {}", dir.display()))
        }
        _ => None,
    }
}

/// Proxies' admin addresses, `host:port` separated by commas or spaces.
pub fn addrs(text: &str) -> Result<Vec<String>, String> {
    let addrs: Vec<String> = split(text);
    if addrs.is_empty() {
        return Err("give at least one admin address, like 10.0.0.7:4191".into());
    }
    for a in &addrs {
        let port = a
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(p))) if !host.is_empty() && p > 0 => {}
            _ => return Err(format!("`{a}` is not host:port (like 10.0.0.7:4191)")),
        }
    }
    Ok(addrs)
}

/// Metrics targets, `[NS/NAME=]URL-or-FILE` separated by commas or spaces; files must exist.
pub fn metrics_targets(text: &str) -> Result<Vec<String>, String> {
    let targets = split(text);
    if targets.is_empty() {
        return Err("give a /metrics URL or a saved metrics file".into());
    }
    for t in &targets {
        let target: MetricsTarget = t.parse().map_err(|e| format!("{e}"))?;
        if !target.is_url()
            && let Some(problem) = file(&target.location)
        {
            return Err(problem);
        }
    }
    Ok(targets)
}

/// An http(s) URL.
pub fn url(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        Some("give the server's URL, like http://prometheus:9090".into())
    } else if !(text.starts_with("http://") || text.starts_with("https://")) {
        Some(format!("`{text}` is not an http:// or https:// URL"))
    } else {
        None
    }
}

fn split(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_say_what_is_wrong() {
        assert_eq!(file(""), Some("give a file".into()));
        assert!(
            file("/no/such/file")
                .unwrap()
                .contains("no file at /no/such/file")
        );
        assert!(file("/").unwrap().contains("directory"));
        assert_eq!(addrs("10.0.0.1:4191, [::1]:4191").unwrap().len(), 2);
        assert!(addrs("10.0.0.1").unwrap_err().contains("not host:port"));
        assert!(addrs("").is_err());
        assert!(url("prometheus:9090").unwrap().contains("not an http"));
        assert_eq!(url("http://p:9090"), None);
        assert!(
            metrics_targets("shop/web=/no/such")
                .unwrap_err()
                .contains("no file")
        );
        assert!(
            new_file("/no/such/dir/x.tap")
                .unwrap()
                .contains("no directory")
        );
    }
}
