//! A decoded Avro value (the tap's Avro JSON) as a collapsible tree, with the fields an error
//! names highlighted and opened, and the fields a contract redacted marked. With the writer
//! schema, the tree shows the friendly view: logical types as values, unions unwrapped.

use egui::{CollapsingHeader, RichText};
use serde_json::Value;

use crate::avro::{Schema, friendly_from_avro_json};

/// Array items shown before "… n more".
const MAX_ITEMS: usize = 200;

/// Avro JSON wraps a union's non-null value in its branch's name; these are shown inline.
const BRANCHES: [&str; 7] = [
    "string", "int", "long", "float", "double", "boolean", "bytes",
];

/// The documents of one `value_json` (a container body holds one per line), parsed once.
#[derive(Debug, Clone)]
pub struct ValueTree {
    docs: Result<Vec<Value>, String>,
    /// Data paths (`.lines[1].sku`) that errors point at.
    error_paths: Vec<String>,
    /// Dotted field paths (`customer.email`) whose values were redacted.
    redacted: Vec<String>,
}

/// The data path a decoder error names, as in "… at byte 12 (in .lines[1].sku)".
pub fn error_path(error: &str) -> Option<&str> {
    let start = error.rfind("(in .")? + 4;
    let end = start + error[start..].find(')')?;
    Some(&error[start..end])
}

/// `.lines[1].sku` → `lines.sku`, the form contracts name redacted fields in.
fn field_path(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out.trim_start_matches('.').to_string()
}

impl ValueTree {
    pub fn new(json: &str, errors: &[String], redacted: &[String]) -> ValueTree {
        let docs = json
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| format!("the value is not JSON: {e}"));
        ValueTree {
            docs,
            error_paths: errors
                .iter()
                .filter_map(|e| error_path(e).map(str::to_string))
                .collect(),
            redacted: redacted.to_vec(),
        }
    }

    /// Reads the documents with their writer schema: dates, timestamps, decimals, UUIDs and
    /// durations become values.
    pub fn with_schema(mut self, schema: &Schema) -> ValueTree {
        if let Ok(docs) = &mut self.docs {
            for doc in docs.iter_mut() {
                *doc = friendly_from_avro_json(schema, doc);
            }
        }
        self
    }

    pub fn error_paths(&self) -> &[String] {
        &self.error_paths
    }

    /// `id_salt` keeps the open/closed state of two trees on screen apart.
    pub fn ui(&self, ui: &mut egui::Ui, id_salt: &str) {
        let docs = match &self.docs {
            Ok(docs) => docs,
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
                return;
            }
        };
        for (i, doc) in docs.iter().enumerate() {
            let name = if docs.len() == 1 {
                "value".to_string()
            } else {
                format!("record {}", i + 1)
            };
            self.node(ui, &format!("{id_salt}/{i}"), &name, "", doc, 0);
        }
    }

    fn on_error_path(&self, path: &str) -> bool {
        self.error_paths.iter().any(|p| {
            p == path
                || (p.starts_with(path)
                    && matches!(p.as_bytes().get(path.len()), Some(b'.' | b'[')))
        })
    }

    fn node(&self, ui: &mut egui::Ui, salt: &str, name: &str, path: &str, v: &Value, depth: usize) {
        let v = unwrap_branch(v);
        let error = self.on_error_path(path);
        let exact = self.error_paths.iter().any(|p| p == path);
        let children: Vec<(String, String, &Value)> = match v {
            Value::Object(map) if !map.is_empty() => map
                .iter()
                .map(|(k, c)| (k.clone(), format!("{path}.{k}"), c))
                .collect(),
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .take(MAX_ITEMS)
                .enumerate()
                .map(|(i, c)| (format!("[{i}]"), format!("{path}[{i}]"), c))
                .collect(),
            scalar => {
                let mut text = RichText::new(format!("{name}: {}", scalar_text(scalar)));
                if exact || error {
                    text = text.color(ui.visuals().error_fg_color).strong();
                }
                ui.horizontal(|ui| {
                    ui.label(text);
                    if exact {
                        ui.colored_label(ui.visuals().error_fg_color, "error here");
                    }
                    if !path.is_empty() && self.redacted.contains(&field_path(path)) {
                        ui.weak("(redacted)");
                    }
                });
                return;
            }
        };
        let count = match v {
            Value::Array(items) => format!("{name} [{}]", items.len()),
            _ => name.to_string(),
        };
        let mut title = RichText::new(count);
        if error {
            title = title.color(ui.visuals().error_fg_color);
        }
        CollapsingHeader::new(title)
            .id_salt(format!("{salt}{path}"))
            .default_open(depth < 2 || error)
            .show(ui, |ui| {
                if exact {
                    ui.colored_label(ui.visuals().error_fg_color, "error here");
                }
                for (key, child_path, child) in &children {
                    self.node(ui, salt, key, child_path, child, depth + 1);
                }
                if let Value::Array(items) = v
                    && items.len() > MAX_ITEMS
                {
                    ui.weak(format!("… {} more", items.len() - MAX_ITEMS));
                }
            });
    }
}

/// `{"string": "SAVE"}` → `"SAVE"`: the branch name adds nothing to a scalar.
fn unwrap_branch(v: &Value) -> &Value {
    match v {
        Value::Object(map) if map.len() == 1 => match map.iter().next() {
            Some((k, inner)) if BRANCHES.contains(&k.as_str()) => inner,
            _ => v,
        },
        _ => v,
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_paths_are_read_from_decoder_messages() {
        assert_eq!(
            error_path("the payload does not decode: bad varint at byte 7 (in .lines[1].sku)"),
            Some(".lines[1].sku")
        );
        assert_eq!(error_path("TYPE_MISMATCH at /fields/2"), None);
        assert_eq!(field_path(".lines[12].sku"), "lines.sku");
    }

    #[test]
    fn a_field_and_its_parents_are_on_the_error_path() {
        let t = ValueTree::new(
            r#"{"lines":[{"sku":"a"}]}"#,
            &["x at byte 3 (in .lines[0].sku)".into()],
            &[],
        );
        assert!(t.on_error_path(""));
        assert!(t.on_error_path(".lines"));
        assert!(t.on_error_path(".lines[0]"));
        assert!(t.on_error_path(".lines[0].sku"));
        assert!(!t.on_error_path(".line"));
        assert!(t.docs.is_ok());
    }
}
