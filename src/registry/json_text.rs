//! Re-indenting JSON text without re-encoding it: numbers, escapes and key order stay exactly
//! as the client sent them (serde_json would write `1.50E+2` as `150.0`). The input
//! must already be valid JSON; only whitespace outside strings changes.

/// One line per member, two-space indent, `"key": value`; `{}` and `[]` stay on one line.
pub fn pretty(text: &str) -> String {
    reformat(text, true)
}

/// No whitespace outside strings.
pub fn compact(text: &str) -> String {
    reformat(text, false)
}

fn reformat(text: &str, pretty: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for s in chars.by_ref() {
                    out.push(s);
                    if escaped {
                        escaped = false;
                    } else if s == '\\' {
                        escaped = true;
                    } else if s == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    if pretty {
                        newline(&mut out, depth);
                    }
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if pretty {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(',');
                if pretty {
                    newline(&mut out, depth);
                }
            }
            ':' => {
                out.push(':');
                if pretty {
                    out.push(' ');
                }
            }
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_tokens_and_reindents() {
        let text = r#" { "type" : "record", "name":"r", "fields" : [ {"name":"a b","type":"int","default": 1.50E+2},
            {"name":"q\"x, [y]","type":{"type":"map","values":"long"}, "default": {}} ], "doc": "" } "#;
        let c = compact(text);
        assert_eq!(
            c,
            r#"{"type":"record","name":"r","fields":[{"name":"a b","type":"int","default":1.50E+2},{"name":"q\"x, [y]","type":{"type":"map","values":"long"},"default":{}}],"doc":""}"#
        );
        let p = pretty(text);
        assert!(p.starts_with("{\n  \"type\": \"record\",\n  \"name\": \"r\",\n  \"fields\": [\n    {\n      \"name\": \"a b\","), "{p}");
        assert!(p.contains("\"default\": {}"), "{p}");
        assert_eq!(compact(&p), c);
        let a: serde_json::Value = serde_json::from_str(&p).unwrap();
        let b: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn scalars_and_empty_containers() {
        assert_eq!(pretty(" \"string\" "), "\"string\"");
        assert_eq!(pretty("[ ]"), "[]");
        assert_eq!(compact("[\"null\", \"int\"]"), "[\"null\",\"int\"]");
    }
}
