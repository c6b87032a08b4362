//! A small streaming JSON writer. Values are rendered straight from the decoded tree, so
//! float widths are kept (an Avro float prints as its shortest `f32` text), non-finite
//! numbers become strings, and map entries keep their encoded order.

pub struct JsonOut {
    out: String,
    indent: Option<usize>,
    /// One entry per open container: whether it is still empty.
    empty: Vec<bool>,
    /// A key was just written, so the next value belongs to it.
    after_key: bool,
}

impl JsonOut {
    /// `indent`: `None` for compact output, `Some(n)` for n spaces per level.
    pub fn new(indent: Option<usize>) -> JsonOut {
        JsonOut {
            out: String::new(),
            indent,
            empty: Vec::new(),
            after_key: false,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn newline(&mut self) {
        if let Some(n) = self.indent {
            self.out.push('\n');
            self.out
                .extend(std::iter::repeat_n(' ', self.empty.len() * n));
        }
    }

    /// Separator and indentation before a value or key.
    fn element(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        if let Some(empty) = self.empty.last_mut() {
            let first = std::mem::replace(empty, false);
            if !first {
                self.out.push(',');
            }
            self.newline();
        }
    }

    fn open(&mut self, c: char) {
        self.element();
        self.out.push(c);
        self.empty.push(true);
    }

    fn close(&mut self, c: char) {
        let was_empty = self.empty.pop().unwrap_or(true);
        if !was_empty {
            self.newline();
        }
        self.out.push(c);
    }

    pub fn begin_object(&mut self) {
        self.open('{');
    }

    pub fn end_object(&mut self) {
        self.close('}');
    }

    pub fn begin_array(&mut self) {
        self.open('[');
    }

    pub fn end_array(&mut self) {
        self.close(']');
    }

    /// An object key; the next call writes its value.
    pub fn key(&mut self, key: &str) {
        self.element();
        escape_into(&mut self.out, key);
        self.out.push(':');
        if self.indent.is_some() {
            self.out.push(' ');
        }
        self.after_key = true;
    }

    pub fn null(&mut self) {
        self.raw("null");
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    pub fn int(&mut self, v: i64) {
        self.raw(itoa::Buffer::new().format(v));
    }

    pub fn f32(&mut self, v: f32) {
        if v.is_finite() {
            self.raw(ryu::Buffer::new().format_finite(v));
        } else {
            self.string(non_finite(v as f64));
        }
    }

    pub fn f64(&mut self, v: f64) {
        if v.is_finite() {
            self.raw(ryu::Buffer::new().format_finite(v));
        } else {
            self.string(non_finite(v));
        }
    }

    pub fn string(&mut self, s: &str) {
        self.element();
        escape_into(&mut self.out, s);
    }

    /// Bytes as a string whose code points 0–255 are the byte values (Avro JSON for bytes/fixed).
    pub fn latin1(&mut self, bytes: &[u8]) {
        let s: String = bytes.iter().map(|b| *b as char).collect();
        self.string(&s);
    }

    /// Text that is already valid JSON (a number).
    pub fn raw(&mut self, text: &str) {
        self.element();
        self.out.push_str(text);
    }
}

/// Non-finite numbers as Java's Jackson writes them by default: quoted.
fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_pretty_output() {
        for (indent, expected) in [
            (None, r#"{"a":[1,"x\n"],"b":{},"c":[]}"#),
            (
                Some(2),
                "{\n  \"a\": [\n    1,\n    \"x\\n\"\n  ],\n  \"b\": {},\n  \"c\": []\n}",
            ),
        ] {
            let mut j = JsonOut::new(indent);
            j.begin_object();
            j.key("a");
            j.begin_array();
            j.int(1);
            j.string("x\n");
            j.end_array();
            j.key("b");
            j.begin_object();
            j.end_object();
            j.key("c");
            j.begin_array();
            j.end_array();
            j.end_object();
            assert_eq!(j.finish(), expected);
        }
    }

    #[test]
    fn floats_keep_their_width_and_non_finite_are_strings() {
        let mut j = JsonOut::new(None);
        j.begin_array();
        j.f32(0.1);
        j.f64(0.1f32 as f64);
        j.f64(f64::NAN);
        j.f32(f32::NEG_INFINITY);
        j.end_array();
        assert_eq!(j.finish(), r#"[0.1,0.10000000149011612,"NaN","-Infinity"]"#);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut j = JsonOut::new(None);
        j.latin1(&[0x00, 0x41, 0xff]);
        assert_eq!(j.finish(), "\"\\u0000A\u{ff}\"");
    }
}
