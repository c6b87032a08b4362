//! Saving the filtered tap table: CSV with the table's columns, or JSON (one event per line
//! or one array) with every field. Formatting and writing happen on a worker thread; the
//! view polls for the outcome and shows it in place.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use crate::avro::to_friendly_json;
use crate::tap::{Event, codec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    JsonArray,
}

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::JsonLines => "JSON lines",
            Format::JsonArray => "JSON array",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::JsonArray => "json",
        }
    }
}

pub const CSV_HEADER: &str =
    "seq,time,source,destination,method,path,status,latency_ms,decision,subjects,valid";

/// `2026-11-27T05:30:00.123456Z`.
fn rfc3339(time_us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| time_us.to_string())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn endpoint(e: &crate::tap::Endpoint) -> String {
    match (&e.namespace, &e.workload) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        (None, Some(w)) => w.clone(),
        _ => e.identity.clone().unwrap_or_else(|| e.addr.clone()),
    }
}

/// One CSV line (no line break) with the table's columns.
pub fn csv_line(seq: u64, e: &Event) -> String {
    let http = e.http.as_ref();
    let subjects: Vec<String> = e
        .avro
        .iter()
        .filter_map(|a| {
            let s = a.subject.as_deref()?;
            Some(a.version.map_or(s.to_string(), |v| format!("{s}@{v}")))
        })
        .collect();
    let valid = match e.avro.is_empty() {
        true => "",
        false if e.avro.iter().all(|a| a.valid) => "valid",
        false => "invalid",
    };
    [
        seq.to_string(),
        rfc3339(e.time_us),
        endpoint(&e.source),
        endpoint(&e.destination),
        http.map(|h| h.method.clone()).unwrap_or_default(),
        http.map(|h| h.path.clone()).unwrap_or_default(),
        http.and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        http.and_then(|h| h.latency_us)
            .map(|l| format!("{:.3}", l as f64 / 1000.0))
            .unwrap_or_default(),
        e.decision
            .as_ref()
            .map(|d| d.verdict.clone())
            .unwrap_or_default(),
        subjects.join(" "),
        valid.to_string(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

/// The event as one line of JSON, field names from the tap event schema.
pub fn json_line(e: &Event) -> String {
    to_friendly_json(codec::schema(), &codec::to_value(e), None)
}

pub fn render(format: Format, events: &[(u64, Event)]) -> String {
    let mut out = String::new();
    match format {
        Format::Csv => {
            out.push_str(CSV_HEADER);
            out.push('\n');
            for (seq, e) in events {
                out.push_str(&csv_line(*seq, e));
                out.push('\n');
            }
        }
        Format::JsonLines => {
            for (_, e) in events {
                out.push_str(&json_line(e));
                out.push('\n');
            }
        }
        Format::JsonArray => {
            out.push('[');
            for (i, (_, e)) in events.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&json_line(e));
            }
            out.push_str("\n]\n");
        }
    }
    out
}

/// The export form and the job it started.
#[derive(Debug)]
pub struct Export {
    pub path: String,
    pub format: Format,
    job: Option<Receiver<Result<String, String>>>,
    /// What the last export did, in words.
    pub outcome: Option<Result<String, String>>,
}

impl Default for Export {
    fn default() -> Self {
        Export {
            path: "meshlens-tap.csv".into(),
            format: Format::Csv,
            job: None,
            outcome: None,
        }
    }
}

impl Export {
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Switches the format and the path's extension with it, if the path has a known one.
    pub fn set_format(&mut self, format: Format) {
        for old in [Format::Csv, Format::JsonLines, Format::JsonArray] {
            if let Some(stem) = self.path.strip_suffix(&format!(".{}", old.extension())) {
                self.path = format!("{stem}.{}", format.extension());
                break;
            }
        }
        self.format = format;
    }

    /// Hands `events` to a worker that writes them to the chosen path; `done` is called
    /// (to repaint) when it finishes.
    pub fn start(&mut self, events: Vec<(u64, Event)>, done: impl FnOnce() + Send + 'static) {
        let path = PathBuf::from(self.path.trim());
        if path.as_os_str().is_empty() {
            self.outcome = Some(Err("Choose a file to save to first.".into()));
            return;
        }
        let format = self.format;
        let (tx, rx) = channel();
        self.job = Some(rx);
        self.outcome = None;
        std::thread::spawn(move || {
            let n = events.len();
            let text = render(format, &events);
            let result = std::fs::write(&path, text)
                .map(|()| format!("Saved {n} events to {}", path.display()))
                .map_err(|e| format!("Could not write {}: {e}", path.display()));
            let _ = tx.send(result);
            done();
        });
    }

    /// Picks up the worker's outcome once it is there.
    pub fn poll(&mut self) {
        let Some(job) = &self.job else { return };
        match job.try_recv() {
            Ok(outcome) => {
                self.outcome = Some(outcome);
                self.job = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.outcome = Some(Err("The export stopped without saying why.".into()));
                self.job = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::request;
    use crate::tap::Direction;

    #[test]
    fn csv_quotes_what_needs_it_and_json_is_one_event_per_line() {
        let mut e = request(Direction::Inbound, 1, 0, "web", "api", 503, Some("deny")).remove(2);
        e.http.as_mut().unwrap().path = "/a,\"b\"".into();
        assert_eq!(
            csv_line(7, &e),
            "7,1970-01-01T00:00:00.002Z,demo/web,demo/api,GET,\"/a,\"\"b\"\"\",503,2.000,deny,,"
        );
        let lines = render(Format::JsonLines, &[(7, e.clone()), (8, e.clone())]);
        assert_eq!(lines.lines().count(), 2);
        let array: serde_json::Value =
            serde_json::from_str(&render(Format::JsonArray, &[(7, e.clone()), (8, e)])).unwrap();
        assert_eq!(array.as_array().map(Vec::len), Some(2));
        assert_eq!(array[0]["http"]["status"], 503);
    }

    #[test]
    fn the_path_follows_the_format() {
        let mut x = Export::default();
        x.set_format(Format::JsonArray);
        assert_eq!(x.path, "meshlens-tap.json");
        x.path = "/tmp/out.txt".into();
        x.set_format(Format::Csv);
        assert_eq!(x.path, "/tmp/out.txt");
    }
}
