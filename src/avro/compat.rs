//! Reader/writer compatibility as the Java reference's `SchemaCompatibility` decides it, with
//! the same incompatibility kinds and JSON-pointer locations, plus what Java misses about
//! logical types: a decimal whose precision or scale changed is incompatible (its bytes would
//! be misread), and a binary-compatible change of meaning (millis → micros) is compatible
//! with a warning.

use std::collections::HashMap;
use std::fmt;

use super::logical::Logical;
use super::resolve::names_match;
use super::schema::{Kind, NodeId, Schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncompatibilityKind {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

impl IncompatibilityKind {
    /// Java's and Confluent's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            IncompatibilityKind::NameMismatch => "NAME_MISMATCH",
            IncompatibilityKind::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            IncompatibilityKind::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            IncompatibilityKind::ReaderFieldMissingDefaultValue => {
                "READER_FIELD_MISSING_DEFAULT_VALUE"
            }
            IncompatibilityKind::TypeMismatch => "TYPE_MISMATCH",
            IncompatibilityKind::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

impl fmt::Display for IncompatibilityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a reader cannot read a writer's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    pub kind: IncompatibilityKind,
    /// JSON pointer into the reader schema, e.g. `/fields/3/type/fields/1`.
    pub location: String,
    /// Java's short detail (`expected: x.Foo`, `[C, D]`, the field name, ...).
    pub detail: String,
    /// A sentence a person understands.
    pub message: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.kind, self.location, self.message)
    }
}

/// A change that resolves but changes what the data means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compatibility {
    pub incompatibilities: Vec<Incompatibility>,
    pub warnings: Vec<Warning>,
}

impl Compatibility {
    pub fn is_compatible(&self) -> bool {
        self.incompatibilities.is_empty()
    }
}

/// Can `reader` read everything `writer` can write?
pub fn check(reader: &Schema, writer: &Schema) -> Compatibility {
    check_nodes(reader, reader.root(), writer, writer.root())
}

/// Can the reader's type at `r` read the writer's type at `w`? (Used to judge one change
/// inside two schemas.)
pub fn check_nodes(reader: &Schema, r: NodeId, writer: &Schema, w: NodeId) -> Compatibility {
    let mut checker = Checker {
        reader,
        writer,
        memo: HashMap::new(),
        location: Vec::new(),
        warnings: Vec::new(),
    };
    let incompatibilities = checker.compatible(r, w);
    let mut warnings = checker.warnings;
    warnings.dedup();
    Compatibility {
        incompatibilities,
        warnings,
    }
}

struct Checker<'a> {
    reader: &'a Schema,
    writer: &'a Schema,
    /// Record pairs already checked or being checked (recursion is assumed compatible, as in
    /// Java). Only records can recurse, so only they are remembered.
    memo: HashMap<(NodeId, NodeId), Vec<Incompatibility>>,
    location: Vec<Segment>,
    warnings: Vec<Warning>,
}

/// One step of a location; indices are kept as numbers so walking allocates nothing.
#[derive(Clone, Copy)]
enum Segment {
    Name(&'static str),
    Index(usize),
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Name(n) => f.write_str(n),
            Segment::Index(i) => write!(f, "{i}"),
        }
    }
}

fn type_word(kind: &Kind) -> String {
    kind.type_name().to_uppercase()
}

impl Checker<'_> {
    fn pointer(&self, extra: Option<Segment>) -> String {
        let parts: Vec<String> = self
            .location
            .iter()
            .chain(&extra)
            .map(Segment::to_string)
            .collect();
        format!("/{}", parts.join("/"))
    }

    fn issue(
        &self,
        kind: IncompatibilityKind,
        extra: Option<Segment>,
        detail: String,
        message: String,
    ) -> Incompatibility {
        Incompatibility {
            kind,
            location: self.pointer(extra),
            detail,
            message,
        }
    }

    fn type_mismatch(&self, r: NodeId, w: NodeId) -> Incompatibility {
        let (rk, wk) = (self.reader.kind(r), self.writer.kind(w));
        self.issue(
            IncompatibilityKind::TypeMismatch,
            None,
            format!(
                "reader type: {} not compatible with writer type: {}",
                type_word(rk),
                type_word(wk)
            ),
            format!(
                "the reader expects {} where the writer writes {}",
                describe(self.reader, r),
                describe(self.writer, w)
            ),
        )
    }

    fn with<T>(&mut self, segments: &[Segment], f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.location.len();
        self.location.extend_from_slice(segments);
        let out = f(self);
        self.location.truncate(len);
        out
    }

    fn compatible(&mut self, r: NodeId, w: NodeId) -> Vec<Incompatibility> {
        let records = matches!(
            (self.reader.kind(r), self.writer.kind(w)),
            (Kind::Record(_), Kind::Record(_))
        );
        if !records {
            return self.compute(r, w);
        }
        let key = (r, w);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        self.memo.insert(key, Vec::new());
        let result = self.compute(r, w);
        self.memo.insert(key, result.clone());
        result
    }

    fn compute(&mut self, r: NodeId, w: NodeId) -> Vec<Incompatibility> {
        let (rk, wk) = (self.reader.kind(r), self.writer.kind(w));
        let mut out = Vec::new();
        if std::mem::discriminant(rk) == std::mem::discriminant(wk) {
            match (rk, wk) {
                (Kind::Array(ri), Kind::Array(wi)) => {
                    let (ri, wi) = (*ri, *wi);
                    out.extend(self.with(&[Segment::Name("items")], |c| c.compatible(ri, wi)));
                }
                (Kind::Map(rv), Kind::Map(wv)) => {
                    let (rv, wv) = (*rv, *wv);
                    out.extend(self.with(&[Segment::Name("values")], |c| c.compatible(rv, wv)));
                }
                (Kind::Fixed(rf), Kind::Fixed(wf)) => {
                    out.extend(self.names(r, w));
                    if rf.size != wf.size {
                        out.push(self.issue(
                            IncompatibilityKind::FixedSizeMismatch,
                            Some(Segment::Name("size")),
                            format!("expected: {}, found: {}", wf.size, rf.size),
                            format!(
                                "fixed {} is {} bytes in the reader but {} bytes in the writer",
                                rf.name, rf.size, wf.size
                            ),
                        ));
                    }
                }
                (Kind::Enum(re), Kind::Enum(we)) => {
                    out.extend(self.names(r, w));
                    let missing: Vec<&str> = we
                        .symbols
                        .iter()
                        .filter(|s| !re.symbols.contains(s))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() && re.default.is_none() {
                        out.push(self.issue(
                            IncompatibilityKind::MissingEnumSymbols,
                            Some(Segment::Name("symbols")),
                            format!("[{}]", missing.join(", ")),
                            format!(
                                "the writer's enum {} has symbols {} that the reader's enum lacks, and the reader's enum has no default",
                                we.name,
                                missing.join(", ")
                            ),
                        ));
                    }
                }
                (Kind::Record(_), Kind::Record(_)) => {
                    out.extend(self.names(r, w));
                    out.extend(self.fields(r, w));
                }
                (Kind::Union(_), Kind::Union(wb)) => {
                    let wb = wb.clone();
                    for (i, branch) in wb.iter().enumerate() {
                        let index = Segment::Index(i);
                        let found = self.with(&[index], |c| c.compatible(r, *branch));
                        if !found.is_empty() {
                            let w_label = self.writer.branch_label(*branch).to_string();
                            out.push(self.issue(
                                IncompatibilityKind::MissingUnionBranch,
                                Some(index),
                                format!("reader union lacking writer type: {}", type_word(self.writer.kind(*branch))),
                                format!("the reader's union has no branch that can read the writer's {w_label}"),
                            ));
                        }
                    }
                }
                _ => {}
            }
            if out.is_empty() {
                self.logical(r, w, &mut out);
            }
            return out;
        }
        if let Kind::Union(wb) = wk {
            for branch in wb.clone() {
                out.extend(self.compatible(r, branch));
            }
            return out;
        }
        let promotes = matches!(
            (rk, wk),
            (Kind::Long, Kind::Int)
                | (Kind::Float, Kind::Int | Kind::Long)
                | (Kind::Double, Kind::Int | Kind::Long | Kind::Float)
                | (Kind::Bytes, Kind::String)
                | (Kind::String, Kind::Bytes)
        );
        if promotes {
            self.logical(r, w, &mut out);
            return out;
        }
        if let Kind::Union(rb) = rk {
            for branch in rb.clone() {
                if self.compatible(branch, w).is_empty() {
                    return out;
                }
            }
            out.push(self.issue(
                IncompatibilityKind::MissingUnionBranch,
                None,
                format!("reader union lacking writer type: {}", type_word(wk)),
                format!(
                    "the reader's union has no branch that can read the writer's {}",
                    describe(self.writer, w)
                ),
            ));
            return out;
        }
        out.push(self.type_mismatch(r, w));
        out
    }

    fn names(&self, r: NodeId, w: NodeId) -> Option<Incompatibility> {
        let (rk, wk) = (self.reader.kind(r), self.writer.kind(w));
        if names_match(wk, rk) {
            return None;
        }
        let (rn, wn) = (rk.name()?, wk.name()?);
        Some(self.issue(
            IncompatibilityKind::NameMismatch,
            Some(Segment::Name("name")),
            format!("expected: {}", wn.full()),
            format!(
                "the reader's {} is named {} but the writer's is {} (add \"{}\" to the reader's aliases to rename)",
                rk.type_name(),
                rn.full(),
                wn.full(),
                wn.full()
            ),
        ))
    }

    fn fields(&mut self, r: NodeId, w: NodeId) -> Vec<Incompatibility> {
        let (Kind::Record(rr), Kind::Record(wr)) = (self.reader.kind(r), self.writer.kind(w))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, rf) in rr.fields.iter().enumerate() {
            let index = Segment::Index(i);
            // Fields usually keep their position between versions: try it before searching.
            let same_place = wr.fields.get(i).filter(|wf| wf.name == rf.name).map(|_| i);
            let writer_field = same_place
                .or_else(|| wr.field_index(&rf.name))
                .or_else(|| rf.aliases.iter().find_map(|a| wr.field_index(a)))
                .map(|j| &wr.fields[j]);
            match writer_field {
                Some(wf) => {
                    let (rs, ws) = (rf.schema, wf.schema);
                    out.extend(self.with(&[Segment::Name("fields"), index, Segment::Name("type")], |c| c.compatible(rs, ws)));
                }
                None if rf.default.is_some() => {}
                None => out.push(self.with(&[Segment::Name("fields"), index], |c| {
                    c.issue(
                        IncompatibilityKind::ReaderFieldMissingDefaultValue,
                        None,
                        rf.name.clone(),
                        format!(
                            "the reader's field \"{}\" has no default value and the writer's {} does not have it",
                            rf.name, wr.name
                        ),
                    )
                })),
            }
        }
        out
    }

    /// Logical-type rules Java leaves out. Decimal changes corrupt values; other changes of
    /// meaning on the same bytes are reported as warnings.
    fn logical(&mut self, r: NodeId, w: NodeId, out: &mut Vec<Incompatibility>) {
        let (rl, wl) = (self.reader.node(r).logical, self.writer.node(w).logical);
        match (rl, wl) {
            (a, b) if a == b => {}
            (
                Some(Logical::Decimal {
                    precision: rp,
                    scale: rs,
                }),
                Some(Logical::Decimal {
                    precision: wp,
                    scale: ws,
                }),
            ) => {
                out.push(self.issue(
                    IncompatibilityKind::TypeMismatch,
                    None,
                    format!("reader decimal({rp},{rs}) not compatible with writer decimal({wp},{ws})"),
                    format!(
                        "the reader reads decimal({rp},{rs}) but the writer writes decimal({wp},{ws}); the unscaled bytes would be read with the wrong precision or scale"
                    ),
                ));
            }
            (rl, wl) => {
                let name = |l: Option<Logical>| {
                    l.map(|l| l.name().to_string())
                        .unwrap_or_else(|| "no logical type".into())
                };
                self.warnings.push(Warning {
                    location: self.pointer(None),
                    message: format!(
                        "the bytes resolve, but the writer's {} is read as {}: values change meaning",
                        name(wl),
                        name(rl)
                    ),
                });
            }
        }
    }
}

/// A short description of a type for messages: `string`, `record shop.Order`, `decimal(10,2) bytes`.
fn describe(schema: &Schema, id: NodeId) -> String {
    let node = schema.node(id);
    let base = match node.kind.name() {
        Some(n) => format!("{} {}", node.kind.type_name(), n.full()),
        None => node.kind.type_name().to_string(),
    };
    match node.logical {
        Some(Logical::Decimal { precision, scale }) => {
            format!("decimal({precision},{scale}) {base}")
        }
        Some(l) => format!("{} {base}", l.name()),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compat(reader: &str, writer: &str) -> Compatibility {
        check(
            &Schema::parse(reader).unwrap(),
            &Schema::parse(writer).unwrap(),
        )
    }

    fn kinds(c: &Compatibility) -> Vec<(IncompatibilityKind, &str)> {
        c.incompatibilities
            .iter()
            .map(|i| (i.kind, i.location.as_str()))
            .collect()
    }

    const V1: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}"#;
    const V2_DEFAULT: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#;

    #[test]
    fn added_fields_need_defaults_for_old_data() {
        assert!(compat(V2_DEFAULT, V1).is_compatible());
        assert!(compat(V1, V2_DEFAULT).is_compatible());
        let c = compat(V2_NO_DEFAULT, V1);
        assert_eq!(
            kinds(&c),
            vec![(
                IncompatibilityKind::ReaderFieldMissingDefaultValue,
                "/fields/1"
            )]
        );
        assert_eq!(c.incompatibilities[0].detail, "b");
    }

    #[test]
    fn promotions_follow_the_specification() {
        for (r, w, ok) in [
            ("\"long\"", "\"int\"", true),
            ("\"double\"", "\"long\"", true),
            ("\"float\"", "\"long\"", true),
            ("\"string\"", "\"bytes\"", true),
            ("\"bytes\"", "\"string\"", true),
            ("\"int\"", "\"long\"", false),
            ("\"float\"", "\"double\"", false),
            ("\"string\"", "\"int\"", false),
        ] {
            assert_eq!(compat(r, w).is_compatible(), ok, "{r} <- {w}");
        }
        let c = compat("\"int\"", "\"long\"");
        assert_eq!(
            c.incompatibilities[0].detail,
            "reader type: INT not compatible with writer type: LONG"
        );
        assert_eq!(c.incompatibilities[0].location, "/");
    }

    #[test]
    fn nested_locations_are_json_pointers() {
        let reader = r#"{"type":"record","name":"r","fields":[{"name":"x","type":"int"},{"name":"in","type":{"type":"record","name":"i","fields":[{"name":"p","type":"int"},{"name":"q","type":"int"}]}}]}"#;
        let writer = r#"{"type":"record","name":"r","fields":[{"name":"x","type":"int"},{"name":"in","type":{"type":"record","name":"i","fields":[{"name":"p","type":"int"},{"name":"q","type":"string"}]}}]}"#;
        assert_eq!(
            kinds(&compat(reader, writer)),
            vec![(
                IncompatibilityKind::TypeMismatch,
                "/fields/1/type/fields/1/type"
            )]
        );
    }

    #[test]
    fn enums_need_every_writer_symbol_or_a_default() {
        let r = r#"{"type":"enum","name":"e","symbols":["A","B"]}"#;
        let w = r#"{"type":"enum","name":"e","symbols":["A","B","C","D"]}"#;
        let c = compat(r, w);
        assert_eq!(
            kinds(&c),
            vec![(IncompatibilityKind::MissingEnumSymbols, "/symbols")]
        );
        assert_eq!(c.incompatibilities[0].detail, "[C, D]");
        let with_default = r#"{"type":"enum","name":"e","symbols":["A","B"],"default":"A"}"#;
        assert!(compat(with_default, w).is_compatible());
    }

    #[test]
    fn enum_default_does_not_stand_in_for_a_missing_field() {
        let r = r#"{"type":"record","name":"r","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["A"],"default":"A"}}]}"#;
        let w = r#"{"type":"record","name":"r","fields":[]}"#;
        assert!(!compat(r, w).is_compatible());
    }

    #[test]
    fn names_compare_unqualified_and_reader_aliases_rename() {
        let w = r#"{"type":"record","name":"a.Old","fields":[]}"#;
        assert!(compat(r#"{"type":"record","name":"b.Old","fields":[]}"#, w).is_compatible());
        let c = compat(r#"{"type":"record","name":"New","fields":[]}"#, w);
        assert_eq!(
            kinds(&c),
            vec![(IncompatibilityKind::NameMismatch, "/name")]
        );
        assert_eq!(c.incompatibilities[0].detail, "expected: a.Old");
        assert!(
            compat(
                r#"{"type":"record","name":"New","aliases":["a.Old"],"fields":[]}"#,
                w
            )
            .is_compatible()
        );
    }

    #[test]
    fn fixed_sizes_must_match() {
        let c = compat(
            r#"{"type":"fixed","name":"f","size":4}"#,
            r#"{"type":"fixed","name":"f","size":8}"#,
        );
        assert_eq!(
            kinds(&c),
            vec![(IncompatibilityKind::FixedSizeMismatch, "/size")]
        );
        assert_eq!(c.incompatibilities[0].detail, "expected: 8, found: 4");
    }

    #[test]
    fn unions_need_every_writer_branch() {
        assert!(compat(r#"["null","string"]"#, "\"string\"").is_compatible());
        let c = compat("\"string\"", r#"["null","string"]"#);
        assert_eq!(kinds(&c), vec![(IncompatibilityKind::TypeMismatch, "/")]);
        let c = compat(r#"["null","string"]"#, r#"["null","string","int"]"#);
        assert_eq!(
            kinds(&c),
            vec![(IncompatibilityKind::MissingUnionBranch, "/2")]
        );
        let c = compat(r#"["null","string"]"#, "\"int\"");
        assert_eq!(
            kinds(&c),
            vec![(IncompatibilityKind::MissingUnionBranch, "/")]
        );
    }

    #[test]
    fn field_aliases_match_renamed_fields() {
        let r = r#"{"type":"record","name":"r","fields":[{"name":"new","aliases":["old"],"type":"int"}]}"#;
        let w = r#"{"type":"record","name":"r","fields":[{"name":"old","type":"int"}]}"#;
        assert!(compat(r, w).is_compatible());
    }

    #[test]
    fn recursion_terminates() {
        let s = r#"{"type":"record","name":"n","fields":[{"name":"next","type":["null","n"]}]}"#;
        assert!(compat(s, s).is_compatible());
        let r = r#"{"type":"record","name":"n","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","n"]}]}"#;
        let w = r#"{"type":"record","name":"n","fields":[{"name":"next","type":["null","n"]}]}"#;
        assert_eq!(
            kinds(&compat(r, w)),
            vec![(
                IncompatibilityKind::ReaderFieldMissingDefaultValue,
                "/fields/0"
            )]
        );
    }

    #[test]
    fn named_reference_and_inline_definition_compare_structurally() {
        let r = r#"{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":2}},{"name":"b","type":"F"}]}"#;
        let w = r#"{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":2}},{"name":"b","type":{"type":"fixed","name":"G","size":2}}]}"#;
        let c = compat(r, w);
        assert_eq!(
            kinds(&c),
            vec![(IncompatibilityKind::NameMismatch, "/fields/1/type/name")]
        );
    }

    #[test]
    fn logical_type_changes() {
        let dec = |p, s| {
            format!(r#"{{"type":"bytes","logicalType":"decimal","precision":{p},"scale":{s}}}"#)
        };
        assert!(compat(&dec(10, 2), &dec(10, 2)).is_compatible());
        assert!(!compat(&dec(10, 3), &dec(10, 2)).is_compatible());
        assert!(!compat(&dec(12, 2), &dec(10, 2)).is_compatible());
        let c = compat(
            r#"{"type":"long","logicalType":"timestamp-micros"}"#,
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        );
        assert!(c.is_compatible());
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0]
                .message
                .contains("timestamp-millis is read as timestamp-micros"),
            "{:?}",
            c.warnings
        );
        let uuid_fixed = r#"{"type":"fixed","name":"u","size":16,"logicalType":"uuid"}"#;
        assert!(!compat(r#"{"type":"string","logicalType":"uuid"}"#, uuid_fixed).is_compatible());
    }
}
