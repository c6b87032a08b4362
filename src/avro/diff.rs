//! Structural diff of two schema versions: what changed, where, and what each change means
//! for compatibility in each direction — so a reviewer sees "field `coupon` added without a
//! default: breaks new readers of old data" instead of a text diff.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value as Json;

use super::compat::check_nodes;
use super::schema::{Field, Kind, NodeId, Schema};

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    FieldAdded {
        name: String,
        default: Option<Json>,
    },
    FieldRemoved {
        name: String,
        default: Option<Json>,
    },
    /// The new field lists the old name among its aliases.
    FieldRenamed {
        from: String,
        to: String,
    },
    TypeChanged {
        from: String,
        to: String,
    },
    DefaultChanged {
        from: Option<Json>,
        to: Option<Json>,
    },
    DocChanged {
        from: Option<String>,
        to: Option<String>,
    },
    OrderChanged,
    NameChanged {
        from: String,
        to: String,
    },
    AliasesChanged {
        from: Vec<String>,
        to: Vec<String>,
    },
    EnumSymbolsAdded(Vec<String>),
    EnumSymbolsRemoved(Vec<String>),
    EnumDefaultChanged {
        from: Option<String>,
        to: Option<String>,
    },
    FixedSizeChanged {
        from: usize,
        to: usize,
    },
    UnionBranchAdded(String),
    UnionBranchRemoved(String),
}

/// What a change does to one direction of reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impact {
    Compatible,
    /// Still resolves, but values change meaning (e.g. a logical type changed).
    Warning(String),
    Breaks(String),
}

impl Impact {
    pub fn is_breaking(&self) -> bool {
        matches!(self, Impact::Breaks(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Where: `.customer.email`, `.lines[].price`, `.status<string>` (union branch).
    pub path: String,
    pub kind: ChangeKind,
    /// Can readers on the new schema read data written with the old one?
    pub backward: Impact,
    /// Can readers on the old schema read data written with the new one?
    pub forward: Impact,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<Json>| {
            v.as_ref()
                .map(|j| j.to_string())
                .unwrap_or_else(|| "none".into())
        };
        match self {
            ChangeKind::FieldAdded { name, default } => match default {
                Some(d) => write!(f, "field \"{name}\" added with default {d}"),
                None => write!(f, "field \"{name}\" added without a default"),
            },
            ChangeKind::FieldRemoved { name, default } => match default {
                Some(d) => write!(f, "field \"{name}\" removed (it had default {d})"),
                None => write!(f, "field \"{name}\" removed (it had no default)"),
            },
            ChangeKind::FieldRenamed { from, to } => {
                write!(f, "field \"{from}\" renamed to \"{to}\" (alias kept)")
            }
            ChangeKind::TypeChanged { from, to } => write!(f, "type changed from {from} to {to}"),
            ChangeKind::DefaultChanged { from, to } => {
                write!(f, "default changed from {} to {}", opt(from), opt(to))
            }
            ChangeKind::DocChanged { .. } => write!(f, "documentation changed"),
            ChangeKind::OrderChanged => write!(f, "sort order changed"),
            ChangeKind::NameChanged { from, to } => write!(f, "renamed from {from} to {to}"),
            ChangeKind::AliasesChanged { from, to } => {
                write!(f, "aliases changed from {from:?} to {to:?}")
            }
            ChangeKind::EnumSymbolsAdded(s) => write!(f, "enum symbols added: {}", s.join(", ")),
            ChangeKind::EnumSymbolsRemoved(s) => {
                write!(f, "enum symbols removed: {}", s.join(", "))
            }
            ChangeKind::EnumDefaultChanged { from, to } => write!(
                f,
                "enum default changed from {} to {}",
                from.as_deref().unwrap_or("none"),
                to.as_deref().unwrap_or("none")
            ),
            ChangeKind::FixedSizeChanged { from, to } => {
                write!(f, "fixed size changed from {from} to {to} bytes")
            }
            ChangeKind::UnionBranchAdded(b) => write!(f, "union branch {b} added"),
            ChangeKind::UnionBranchRemoved(b) => write!(f, "union branch {b} removed"),
        }
    }
}

/// Everything that changed from `old` to `new`.
pub fn diff(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut d = Differ {
        old,
        new,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    d.node(old.root(), new.root(), String::new());
    d.out
}

struct Differ<'a> {
    old: &'a Schema,
    new: &'a Schema,
    seen: HashSet<(NodeId, NodeId)>,
    out: Vec<Change>,
}

/// A type's description for messages: `string`, `record shop.Order`, `timestamp-millis long`.
fn type_text(schema: &Schema, id: NodeId) -> String {
    let node = schema.node(id);
    let base = match &node.kind {
        Kind::Union(b) => format!(
            "[{}]",
            b.iter()
                .map(|x| type_text(schema, *x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::Array(i) => format!("array<{}>", type_text(schema, *i)),
        Kind::Map(v) => format!("map<{}>", type_text(schema, *v)),
        k => match k.name() {
            Some(n) => n.full().to_string(),
            None => k.type_name().to_string(),
        },
    };
    match node.logical {
        Some(super::Logical::Decimal { precision, scale }) => {
            format!("decimal({precision},{scale})")
        }
        Some(l) => format!("{} {base}", l.name()),
        None => base,
    }
}

impl Differ<'_> {
    fn push(&mut self, path: &str, kind: ChangeKind, backward: Impact, forward: Impact) {
        self.out.push(Change {
            path: if path.is_empty() {
                ".".into()
            } else {
                path.to_string()
            },
            kind,
            backward,
            forward,
        });
    }

    /// Impact of reading `writer_side` data with `reader_side`, judged on the two types alone.
    fn impact(&self, reader_new: bool, o: NodeId, n: NodeId) -> Impact {
        let result = if reader_new {
            check_nodes(self.new, n, self.old, o)
        } else {
            check_nodes(self.old, o, self.new, n)
        };
        if let Some(i) = result.incompatibilities.first() {
            Impact::Breaks(i.message.clone())
        } else if let Some(w) = result.warnings.first() {
            Impact::Warning(w.message.clone())
        } else {
            Impact::Compatible
        }
    }

    fn type_change(&mut self, o: NodeId, n: NodeId, path: &str) {
        let backward = self.impact(true, o, n);
        let forward = self.impact(false, o, n);
        let kind = ChangeKind::TypeChanged {
            from: type_text(self.old, o),
            to: type_text(self.new, n),
        };
        self.push(path, kind, backward, forward);
    }

    fn node(&mut self, o: NodeId, n: NodeId, path: String) {
        if !self.seen.insert((o, n)) {
            return;
        }
        let (on, nn) = (self.old.node(o), self.new.node(n));
        if on.logical != nn.logical
            && std::mem::discriminant(&on.kind) == std::mem::discriminant(&nn.kind)
        {
            self.type_change(o, n, &path);
        }
        match (&on.kind, &nn.kind) {
            (Kind::Record(or), Kind::Record(nr)) => {
                self.names(o, n, &path);
                self.fields(&or.fields, &nr.fields, &path);
            }
            (Kind::Enum(oe), Kind::Enum(ne)) => {
                self.names(o, n, &path);
                let added: Vec<String> = ne
                    .symbols
                    .iter()
                    .filter(|s| !oe.symbols.contains(s))
                    .cloned()
                    .collect();
                let removed: Vec<String> = oe
                    .symbols
                    .iter()
                    .filter(|s| !ne.symbols.contains(s))
                    .cloned()
                    .collect();
                if !added.is_empty() {
                    let forward = if oe.default.is_some() {
                        Impact::Compatible
                    } else {
                        Impact::Breaks(format!(
                            "old readers cannot read the new symbols {} (their enum has no default)",
                            added.join(", ")
                        ))
                    };
                    self.push(
                        &path,
                        ChangeKind::EnumSymbolsAdded(added),
                        Impact::Compatible,
                        forward,
                    );
                }
                if !removed.is_empty() {
                    let backward = if ne.default.is_some() {
                        Impact::Compatible
                    } else {
                        Impact::Breaks(format!(
                            "new readers cannot read the old symbols {} (their enum has no default)",
                            removed.join(", ")
                        ))
                    };
                    self.push(
                        &path,
                        ChangeKind::EnumSymbolsRemoved(removed),
                        backward,
                        Impact::Compatible,
                    );
                }
                let symbol =
                    |e: &super::schema::Enum| e.default.map(|i| e.symbols[i as usize].clone());
                if symbol(oe) != symbol(ne) {
                    let kind = ChangeKind::EnumDefaultChanged {
                        from: symbol(oe),
                        to: symbol(ne),
                    };
                    let (b, f) = (self.impact(true, o, n), self.impact(false, o, n));
                    self.push(&path, kind, b, f);
                }
            }
            (Kind::Fixed(of), Kind::Fixed(nf)) => {
                self.names(o, n, &path);
                if of.size != nf.size {
                    let (b, f) = (self.impact(true, o, n), self.impact(false, o, n));
                    self.push(
                        &path,
                        ChangeKind::FixedSizeChanged {
                            from: of.size,
                            to: nf.size,
                        },
                        b,
                        f,
                    );
                }
            }
            (Kind::Array(oi), Kind::Array(ni)) => self.node(*oi, *ni, format!("{path}[]")),
            (Kind::Map(ov), Kind::Map(nv)) => self.node(*ov, *nv, format!("{path}{{}}")),
            (Kind::Union(ob), Kind::Union(nb)) => {
                let label = |s: &Schema, id: NodeId| s.branch_label(id).to_string();
                for b in nb {
                    let l = label(self.new, *b);
                    match ob.iter().find(|x| label(self.old, **x) == l) {
                        Some(x) => self.node(*x, *b, format!("{path}<{l}>")),
                        None => {
                            let forward = self.impact(false, o, n);
                            self.push(
                                &path,
                                ChangeKind::UnionBranchAdded(l),
                                Impact::Compatible,
                                forward,
                            );
                        }
                    }
                }
                for b in ob {
                    let l = label(self.old, *b);
                    if !nb.iter().any(|x| label(self.new, *x) == l) {
                        let backward = self.impact(true, o, n);
                        self.push(
                            &path,
                            ChangeKind::UnionBranchRemoved(l),
                            backward,
                            Impact::Compatible,
                        );
                    }
                }
            }
            (ok, nk) if std::mem::discriminant(ok) == std::mem::discriminant(nk) => {}
            _ => self.type_change(o, n, &path),
        }
    }

    fn names(&mut self, o: NodeId, n: NodeId, path: &str) {
        let (ok, nk) = (self.old.kind(o), self.new.kind(n));
        let (Some(on), Some(nn)) = (ok.name(), nk.name()) else {
            return;
        };
        if on != nn {
            let kind = ChangeKind::NameChanged {
                from: on.full().to_string(),
                to: nn.full().to_string(),
            };
            let backward = if on.name() == nn.name() || nk.aliases().iter().any(|a| a == on.full())
            {
                Impact::Compatible
            } else {
                Impact::Breaks(format!(
                    "new readers do not recognise {} (add it to the new schema's aliases)",
                    on.full()
                ))
            };
            let forward = if on.name() == nn.name() || ok.aliases().iter().any(|a| a == nn.full()) {
                Impact::Compatible
            } else {
                Impact::Breaks(format!("old readers do not recognise {}", nn.full()))
            };
            self.push(path, kind, backward, forward);
        }
        if ok.aliases() != nk.aliases() {
            let kind = ChangeKind::AliasesChanged {
                from: ok.aliases().to_vec(),
                to: nk.aliases().to_vec(),
            };
            self.push(path, kind, Impact::Compatible, Impact::Compatible);
        }
        let doc = |k: &Kind| match k {
            Kind::Record(r) => r.doc.clone(),
            Kind::Enum(e) => e.doc.clone(),
            Kind::Fixed(f) => f.doc.clone(),
            _ => None,
        };
        if doc(ok) != doc(nk) {
            let kind = ChangeKind::DocChanged {
                from: doc(ok),
                to: doc(nk),
            };
            self.push(path, kind, Impact::Compatible, Impact::Compatible);
        }
    }

    fn fields(&mut self, old: &[Field], new: &[Field], path: &str) {
        let mut matched_old = HashSet::new();
        for nf in new {
            let by_name = old.iter().position(|of| of.name == nf.name);
            let by_alias = || old.iter().position(|of| nf.aliases.contains(&of.name));
            let field_path = format!("{path}.{}", nf.name);
            match by_name.or_else(by_alias) {
                Some(i) => {
                    matched_old.insert(i);
                    let of = &old[i];
                    if of.name != nf.name {
                        let forward = if of.default.is_some() {
                            Impact::Compatible
                        } else {
                            Impact::Breaks(format!(
                                "old readers look for \"{}\", which new data lacks, and it has no default",
                                of.name
                            ))
                        };
                        let kind = ChangeKind::FieldRenamed {
                            from: of.name.clone(),
                            to: nf.name.clone(),
                        };
                        self.push(&field_path, kind, Impact::Compatible, forward);
                    }
                    if of.default != nf.default {
                        let kind = ChangeKind::DefaultChanged {
                            from: of.default.clone(),
                            to: nf.default.clone(),
                        };
                        self.push(&field_path, kind, Impact::Compatible, Impact::Compatible);
                    }
                    if of.doc != nf.doc {
                        let kind = ChangeKind::DocChanged {
                            from: of.doc.clone(),
                            to: nf.doc.clone(),
                        };
                        self.push(&field_path, kind, Impact::Compatible, Impact::Compatible);
                    }
                    if of.order != nf.order {
                        self.push(
                            &field_path,
                            ChangeKind::OrderChanged,
                            Impact::Compatible,
                            Impact::Compatible,
                        );
                    }
                    self.node(of.schema, nf.schema, field_path);
                }
                None => {
                    let backward = if nf.default.is_some() {
                        Impact::Compatible
                    } else {
                        Impact::Breaks(format!(
                            "new readers need \"{}\", which old data lacks, and it has no default",
                            nf.name
                        ))
                    };
                    let kind = ChangeKind::FieldAdded {
                        name: nf.name.clone(),
                        default: nf.default.clone(),
                    };
                    self.push(&field_path, kind, backward, Impact::Compatible);
                }
            }
        }
        for (_, of) in old
            .iter()
            .enumerate()
            .filter(|(i, _)| !matched_old.contains(i))
        {
            let forward = if of.default.is_some() {
                Impact::Compatible
            } else {
                Impact::Breaks(format!(
                    "old readers need \"{}\", which new data lacks, and it has no default",
                    of.name
                ))
            };
            let kind = ChangeKind::FieldRemoved {
                name: of.name.clone(),
                default: of.default.clone(),
            };
            self.push(
                &format!("{path}.{}", of.name),
                kind,
                Impact::Compatible,
                forward,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(old: &str, new: &str) -> Vec<Change> {
        diff(&Schema::parse(old).unwrap(), &Schema::parse(new).unwrap())
    }

    const OLD: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"string"},
        {"name":"qty","type":"int","doc":"items"},
        {"name":"legacy","type":"string"},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","OLD"]}},
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"email","type":"string"}]}},
        {"name":"note","type":["null","string"],"default":null}]}"#;
    const NEW: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"order_id","aliases":["id"],"type":"string"},
        {"name":"qty","type":"long","doc":"number of items"},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"email","type":"string"},{"name":"tier","type":"int"}]}},
        {"name":"note","type":["null","string","int"],"default":null},
        {"name":"coupon","type":["null","string"],"default":null}]}"#;

    fn find<'a>(all: &'a [Change], path: &str, pred: impl Fn(&ChangeKind) -> bool) -> &'a Change {
        all.iter()
            .find(|c| c.path == path && pred(&c.kind))
            .unwrap_or_else(|| panic!("no change at {path} in {all:#?}"))
    }

    #[test]
    fn every_kind_of_change_is_found_with_its_impact() {
        let all = changes(OLD, NEW);
        let renamed = find(&all, ".order_id", |k| {
            matches!(k, ChangeKind::FieldRenamed { .. })
        });
        assert_eq!(renamed.backward, Impact::Compatible);
        assert!(renamed.forward.is_breaking());

        let widened = find(&all, ".qty", |k| {
            matches!(k, ChangeKind::TypeChanged { .. })
        });
        assert_eq!(widened.backward, Impact::Compatible);
        assert!(
            widened.forward.is_breaking(),
            "old int readers cannot read long"
        );
        find(&all, ".qty", |k| matches!(k, ChangeKind::DocChanged { .. }));

        let removed = find(&all, ".legacy", |k| {
            matches!(k, ChangeKind::FieldRemoved { .. })
        });
        assert_eq!(removed.backward, Impact::Compatible);
        assert!(removed.forward.is_breaking());

        let added_symbol = find(
            &all,
            ".status",
            |k| matches!(k, ChangeKind::EnumSymbolsAdded(s) if s == &["SHIPPED"]),
        );
        assert!(added_symbol.forward.is_breaking());
        let removed_symbol = find(
            &all,
            ".status",
            |k| matches!(k, ChangeKind::EnumSymbolsRemoved(s) if s == &["OLD"]),
        );
        assert!(removed_symbol.backward.is_breaking());

        let tier = find(&all, ".customer.tier", |k| {
            matches!(k, ChangeKind::FieldAdded { default: None, .. })
        });
        assert!(tier.backward.is_breaking());

        let branch = find(
            &all,
            ".note",
            |k| matches!(k, ChangeKind::UnionBranchAdded(b) if b == "int"),
        );
        assert_eq!(branch.backward, Impact::Compatible);
        assert!(branch.forward.is_breaking());

        let coupon = find(&all, ".coupon", |k| {
            matches!(
                k,
                ChangeKind::FieldAdded {
                    default: Some(_),
                    ..
                }
            )
        });
        assert_eq!(
            (coupon.backward.clone(), coupon.forward.clone()),
            (Impact::Compatible, Impact::Compatible)
        );
    }

    #[test]
    fn identical_schemas_have_no_changes() {
        assert!(changes(OLD, OLD).is_empty());
    }

    #[test]
    fn logical_type_change_is_a_warning_and_decimal_change_breaks() {
        let all = changes(
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
            r#"{"type":"long","logicalType":"timestamp-micros"}"#,
        );
        assert!(matches!(all[0].backward, Impact::Warning(_)), "{all:?}");
        let all = changes(
            r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#,
            r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":3}"#,
        );
        assert!(all[0].backward.is_breaking() && all[0].forward.is_breaking());
        assert_eq!(
            all[0].kind.to_string(),
            "type changed from decimal(9,2) to decimal(9,3)"
        );
    }

    #[test]
    fn recursive_schemas_terminate() {
        let s = r#"{"type":"record","name":"n","fields":[{"name":"next","type":["null","n"]}]}"#;
        assert!(changes(s, s).is_empty());
    }
}
