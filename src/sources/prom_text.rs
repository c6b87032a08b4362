//! The Prometheus text exposition format (0.0.4), plus the OpenMetrics parts a
//! linkerd2-proxy appends (`# UNIT`, `# EOF`, its types, exemplars): what a `/metrics`
//! endpoint answers. The input comes from the network, so the parser never panics, bounds
//! what one line may hold, and says which line was wrong and why.

use std::collections::HashMap;

use super::SourceError;

/// Labels on one sample; more is a broken or hostile exporter.
pub const MAX_LABELS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written; names are unique.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the exporter gave one.
    pub timestamp_ms: Option<i64>,
    /// 1-based, for errors found after parsing (a histogram's buckets).
    pub line: usize,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition: the samples in order and the declared type of each family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    pub types: HashMap<String, MetricType>,
    pub help: HashMap<String, String>,
}

/// Parses a whole exposition. Lines after `# EOF` are ignored.
pub fn parse(text: &str) -> Result<Exposition, SourceError> {
    let mut out = Exposition::default();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |message: String| SourceError::Parse { line: n, message };
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if comment.trim() == "EOF" {
                break;
            }
            meta_line(comment, &mut out).map_err(err)?;
            continue;
        }
        let mut sample = sample_line(trimmed).map_err(err)?;
        sample.line = n;
        out.samples.push(sample);
    }
    Ok(out)
}

/// `# HELP name text`, `# TYPE name type`; any other comment is skipped.
fn meta_line(comment: &str, out: &mut Exposition) -> Result<(), String> {
    let mut words = comment
        .trim_start_matches([' ', '\t'])
        .splitn(3, [' ', '\t']);
    let keyword = words.next().unwrap_or("");
    if !matches!(keyword, "HELP" | "TYPE") {
        return Ok(());
    }
    let name = words.next().unwrap_or("");
    if !is_metric_name(name) {
        return Err(format!("`# {keyword}` needs a metric name, found `{name}`"));
    }
    let rest = words.next().unwrap_or("").trim_matches([' ', '\t']);
    if keyword == "HELP" {
        out.help.insert(name.to_string(), unescape_help(rest));
        return Ok(());
    }
    let kind = match rest {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        // OpenMetrics kinds a prometheus-client section may declare; read like untyped.
        "untyped" | "unknown" | "info" | "stateset" | "gaugehistogram" => MetricType::Untyped,
        other => {
            return Err(format!(
                "unknown metric type `{other}` for {name} (counter, gauge, histogram, summary or untyped)"
            ));
        }
    };
    if out.types.insert(name.to_string(), kind).is_some() {
        return Err(format!("a second `# TYPE` for {name}"));
    }
    Ok(())
}

/// HELP text escapes only `\\` and `\n`.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn sample_line(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("`{}` is not a metric name", clip(name)));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        rest = label_set(body, &mut labels)?;
    }
    // An OpenMetrics exemplar (`value # {trace_id="..."} 1`) says nothing about the series.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_value(value).ok_or_else(|| {
        format!(
            "{name}: `{}` is not a number (NaN, +Inf and -Inf are)",
            clip(value)
        )
    })?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            format!(
                "{name}: the timestamp `{}` is not whole milliseconds",
                clip(t)
            )
        })?),
    };
    if let Some(extra) = fields.next() {
        return Err(format!(
            "{name}: unexpected `{}` after the value and timestamp",
            clip(extra)
        ));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
        line: 0,
    })
}

/// Reads `name="value",...}` and returns what follows the closing brace.
fn label_set<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("the label set is not closed with `}`")?;
        let name = &s[..name_end];
        if !is_label_name(name) {
            let shown = match name {
                "" => s.chars().next().map(String::from).unwrap_or_default(),
                n => n.to_string(),
            };
            return Err(format!("`{}` is not a label name", clip(&shown)));
        }
        s = s[name_end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("label {name} has no `=`"))?
            .trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {name} is not quoted"))?;
        let (value, after) = quoted(s).map_err(|e| format!("label {name}: {e}"))?;
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name} appears twice"));
        }
        if labels.len() == MAX_LABELS {
            return Err(format!("more than {MAX_LABELS} labels"));
        }
        labels.push((name.to_string(), value));
        s = after.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label {name}"));
        }
    }
}

/// A label value up to its closing quote, unescaped; returns it and what follows.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, o)) => {
                    return Err(format!("unknown escape `\\{o}` (only \\\\, \\\" and \\n)"));
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("the quoted value does not end".into())
}

/// Go's `ParseFloat` spellings that exporters use; Rust's parser also takes `infinity`,
/// which is harmless.
fn parse_value(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// At most 60 characters of an offending token, so an error stays one line.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_help_type_labels_timestamps_and_special_values() {
        let text = "# HELP rt Total \\\\ requests\\n.\n# TYPE rt counter\n\
                    rt{a=\"x\",b=\"q\\\"uote\\\\back\\nline\",} 12 1700000000000\n\
                    g NaN\n  g2{ } +Inf\ng3 -Inf\r\nplain 1.5e3\n# a comment\n";
        let e = parse(text).unwrap();
        assert_eq!(e.types["rt"], MetricType::Counter);
        assert_eq!(e.help["rt"], "Total \\ requests\n.");
        let rt = &e.samples[0];
        assert_eq!(rt.label("a"), Some("x"));
        assert_eq!(rt.label("b"), Some("q\"uote\\back\nline"));
        assert_eq!(
            (rt.value, rt.timestamp_ms, rt.line),
            (12.0, Some(1_700_000_000_000), 3)
        );
        assert!(e.samples[1].value.is_nan());
        assert_eq!(e.samples[2].value, f64::INFINITY);
        assert!(e.samples[2].labels.is_empty());
        assert_eq!(e.samples[3].value, f64::NEG_INFINITY);
        assert_eq!(e.samples[4].value, 1500.0);
        assert_eq!(e.samples.len(), 5);
    }

    #[test]
    fn stops_at_eof_and_skips_unit_lines() {
        let e = parse("# UNIT x seconds\nx 1\n# EOF\nthis is not parsed {\n").unwrap();
        assert_eq!(e.samples.len(), 1);
    }

    #[test]
    fn openmetrics_types_and_exemplars_are_read() {
        let e =
            parse("# TYPE i info\ni_info{v=\"1\"} 1\nc_total 5 # {trace_id=\"a\"} 1\n").unwrap();
        assert_eq!(e.types["i"], MetricType::Untyped);
        assert_eq!((e.samples[1].value, e.samples[1].timestamp_ms), (5.0, None));
    }

    #[test]
    fn a_label_value_may_hold_braces_commas_and_spaces() {
        let e = parse("m{path=\"/a b,{c}\"} 1\n").unwrap();
        assert_eq!(e.samples[0].label("path"), Some("/a b,{c}"));
    }

    #[test]
    fn malformed_lines_say_which_line_and_what() {
        let cases = [
            ("ok 1\n9bad 1\n", "line 2: `9bad` is not a metric name"),
            ("m{a=\"x\" 1\n", "line 1: expected `,` or `}` after label a"),
            (
                "m{a=\"x} 1\n",
                "line 1: label a: the quoted value does not end",
            ),
            ("m{a=x} 1\n", "line 1: the value of label a is not quoted"),
            ("m{a=\"\\t\"} 1\n", "line 1: label a: unknown escape `\\t`"),
            ("m{a=\"1\",a=\"2\"} 1\n", "line 1: label a appears twice"),
            ("\n\nm\n", "line 3: m has no value"),
            ("m one\n", "line 1: m: `one` is not a number"),
            (
                "m 1 1.5\n",
                "line 1: m: the timestamp `1.5` is not whole milliseconds",
            ),
            ("m 1 2 3\n", "line 1: m: unexpected `3`"),
            ("# TYPE m countr\n", "line 1: unknown metric type `countr`"),
            (
                "# TYPE m gauge\n# TYPE m gauge\n",
                "line 2: a second `# TYPE` for m",
            ),
            ("# HELP\n", "line 1: `# HELP` needs a metric name"),
            ("m{=\"1\"} 1\n", "line 1: `=` is not a label name"),
            ("m{a", "line 1: the label set is not closed"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "{text:?}: got `{got}`, want `{want}`");
        }
    }

    #[test]
    fn too_many_labels_is_an_error() {
        let labels: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
        let text = format!("m{{{}}} 1\n", labels.join(","));
        assert!(err(&text).contains("more than 128 labels"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every prefix of a tricky document, and some lone fragments.
        let doc =
            "# TYPE h histogram\nh_bucket{le=\"+Inf\",x=\"a\\\\\\\"\\n\"} 3 17\nh_sum 2\n\u{e9}{";
        for end in 0..=doc.len() {
            if let Some(prefix) = doc.get(..end) {
                let _ = parse(prefix);
            }
        }
        for s in [
            "{",
            "}",
            "#",
            "# TYPE",
            "m{",
            "m{a",
            "m{a=",
            "m{a=\"",
            "m{a=\"\\",
            "\"",
            "m 1 -",
            "m{\u{e9}=\"x\"} 1",
            "\u{e9} 1",
            "m{a=\"\u{e9}\"}\u{e9}",
        ] {
            let _ = parse(s);
        }
        // Random lines over the format's own characters, multi-byte ones included.
        let alphabet: Vec<char> = "m_a:{}=\",\\n #1.+-Ie\u{e9}\u{1F600}\t\r\nle"
            .chars()
            .collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let text: String = (0..len)
                .map(|i| alphabet[((x >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            let _ = parse(&text);
        }
    }
}
