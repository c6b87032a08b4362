//! Parsed Avro schemas.
//!
//! A schema is an arena of nodes: every named type is stored once and every reference to it
//! (including a recursive one) is the same [`NodeId`]. Canonical form, resolution, decoding
//! and rendering all walk this arena, so none of them re-parse JSON or compare strings on the
//! hot path. Parsing follows the Java reference: names resolve against the enclosing
//! namespace first and then the null namespace; defaults are validated; invalid logical
//! types fall back to their underlying type.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value as Json};

use super::error::SchemaError;
use super::logical::Logical;

/// Index of a node in its [`Schema`]'s arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A full name (`namespace.name`) of a record, enum or fixed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    full: String,
}

impl Name {
    fn new(name: &str, namespace: Option<&str>) -> Name {
        match namespace {
            Some(ns) if !name.contains('.') && !ns.is_empty() => Name {
                full: format!("{ns}.{name}"),
            },
            _ => Name {
                full: name.to_string(),
            },
        }
    }

    pub fn full(&self) -> &str {
        &self.full
    }

    /// The unqualified name, which is what the Java reference compares during resolution.
    pub fn name(&self) -> &str {
        self.full.rsplit('.').next().unwrap_or(&self.full)
    }

    pub fn namespace(&self) -> Option<&str> {
        self.full.rfind('.').map(|i| &self.full[..i])
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
    Ignore,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub aliases: Vec<String>,
    pub doc: Option<String>,
    pub default: Option<Json>,
    pub order: Order,
    pub schema: NodeId,
    /// Attributes the specification does not define, kept for contracts and diffs.
    pub props: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: Name,
    /// Full names.
    pub aliases: Vec<String>,
    pub doc: Option<String>,
    pub fields: Vec<Field>,
}

impl Record {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    pub name: Name,
    pub aliases: Vec<String>,
    pub doc: Option<String>,
    pub symbols: Vec<String>,
    /// Index of the enum's `default` symbol, used when a writer symbol is unknown to the reader.
    pub default: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    pub name: Name,
    pub aliases: Vec<String>,
    pub doc: Option<String>,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Record(Record),
    Enum(Enum),
    Fixed(Fixed),
    Array(NodeId),
    Map(NodeId),
    Union(Vec<NodeId>),
}

impl Kind {
    /// The type's name as written in a schema (`"record"`, `"int"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Int => "int",
            Kind::Long => "long",
            Kind::Float => "float",
            Kind::Double => "double",
            Kind::Bytes => "bytes",
            Kind::String => "string",
            Kind::Record(_) => "record",
            Kind::Enum(_) => "enum",
            Kind::Fixed(_) => "fixed",
            Kind::Array(_) => "array",
            Kind::Map(_) => "map",
            Kind::Union(_) => "union",
        }
    }

    pub fn name(&self) -> Option<&Name> {
        match self {
            Kind::Record(r) => Some(&r.name),
            Kind::Enum(e) => Some(&e.name),
            Kind::Fixed(f) => Some(&f.name),
            _ => None,
        }
    }

    pub fn aliases(&self) -> &[String] {
        match self {
            Kind::Record(r) => &r.aliases,
            Kind::Enum(e) => &e.aliases,
            Kind::Fixed(f) => &f.aliases,
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    /// A valid logical type; an invalid one is ignored, as the specification requires.
    pub logical: Option<Logical>,
    /// Attributes the specification does not define (an invalid `logicalType` stays here).
    pub props: Map<String, Json>,
}

#[derive(Debug, Clone)]
pub struct Schema {
    nodes: Vec<Node>,
    root: NodeId,
    names: HashMap<String, NodeId>,
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        self.root == other.root && self.nodes == other.nodes
    }
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

fn primitive_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "null" => Kind::Null,
        "boolean" => Kind::Boolean,
        "int" => Kind::Int,
        "long" => Kind::Long,
        "float" => Kind::Float,
        "double" => Kind::Double,
        "bytes" => Kind::Bytes,
        "string" => Kind::String,
        _ => return None,
    })
}

impl Schema {
    /// Parses a schema from its JSON text.
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| SchemaError::new("", format!("not valid JSON: {e}")))?;
        Schema::from_json(&json)
    }

    /// Parses `text` after defining the named types of `references` (each a schema JSON text,
    /// in dependency order), the way Confluent schema references work.
    pub fn parse_with_references(text: &str, references: &[&str]) -> Result<Schema, SchemaError> {
        let mut parser = Parser::default();
        for (i, reference) in references.iter().enumerate() {
            let json: Json = serde_json::from_str(reference).map_err(|e| {
                SchemaError::new("", format!("reference {i} is not valid JSON: {e}"))
            })?;
            parser.parse(&json, None, &mut String::new())?;
        }
        let json: Json = serde_json::from_str(text)
            .map_err(|e| SchemaError::new("", format!("not valid JSON: {e}")))?;
        parser.finish(&json)
    }

    pub fn from_json(json: &Json) -> Result<Schema, SchemaError> {
        Parser::default().finish(json)
    }

    pub fn root(&self) -> NodeId {
        self.root
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn kind(&self, id: NodeId) -> &Kind {
        &self.nodes[id.index()].kind
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (NodeId(i as u32), n))
    }

    /// Looks up a named type by full name.
    pub fn named(&self, full_name: &str) -> Option<NodeId> {
        self.names.get(full_name).copied()
    }

    /// The full name of the root type, or its type name for unnamed roots.
    pub fn display_name(&self) -> String {
        let kind = self.kind(self.root);
        kind.name()
            .map(|n| n.full().to_string())
            .unwrap_or_else(|| kind.type_name().to_string())
    }

    /// The label Avro JSON uses for a union branch: the full name for named types, else the type name.
    pub fn branch_label(&self, id: NodeId) -> &str {
        let kind = self.kind(id);
        match kind.name() {
            Some(n) => n.full(),
            None => kind.type_name(),
        }
    }
}

#[derive(Default)]
struct Parser {
    nodes: Vec<Node>,
    names: HashMap<String, NodeId>,
}

fn bad(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::new(path, message)
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_full_name(s: &str) -> bool {
    s.split('.').all(valid_identifier)
}

fn optional_str<'a>(
    obj: &'a Map<String, Json>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, SchemaError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(path, format!("\"{key}\" must be a string"))),
    }
}

fn string_list(obj: &Map<String, Json>, key: &str, path: &str) -> Result<Vec<String>, SchemaError> {
    match obj.get(key) {
        None => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Ok(s.clone()),
                _ => Err(bad(path, format!("\"{key}\" must be a list of strings"))),
            })
            .collect(),
        Some(_) => Err(bad(path, format!("\"{key}\" must be a list of strings"))),
    }
}

/// Attributes a type object may carry that are not kept in `props`.
const TYPE_ATTRIBUTES: [&str; 11] = [
    "type",
    "name",
    "namespace",
    "aliases",
    "doc",
    "fields",
    "symbols",
    "default",
    "items",
    "values",
    "size",
];
const FIELD_ATTRIBUTES: [&str; 6] = ["name", "type", "doc", "default", "aliases", "order"];

fn extra_props(obj: &Map<String, Json>, reserved: &[&str]) -> Map<String, Json> {
    obj.iter()
        .filter(|(k, _)| !reserved.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Parser {
    fn finish(mut self, json: &Json) -> Result<Schema, SchemaError> {
        let root = self.parse(json, None, &mut String::new())?;
        Ok(Schema {
            nodes: self.nodes,
            root,
            names: self.names,
        })
    }

    fn push(&mut self, kind: Kind) -> NodeId {
        self.nodes.push(Node {
            kind,
            logical: None,
            props: Map::new(),
        });
        NodeId(self.nodes.len() as u32 - 1)
    }

    fn reference(
        &self,
        name: &str,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<NodeId, SchemaError> {
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty() && !name.contains('.'))
            && let Some(id) = self.names.get(&format!("{ns}.{name}"))
        {
            return Ok(*id);
        }
        self.names.get(name).copied().ok_or_else(|| {
            bad(
                path,
                format!("unknown type name \"{name}\" (named types must be defined before use)"),
            )
        })
    }

    /// Parses one schema; `path` is its JSON pointer, restored before returning.
    fn parse(
        &mut self,
        json: &Json,
        namespace: Option<&str>,
        path: &mut String,
    ) -> Result<NodeId, SchemaError> {
        match json {
            Json::String(name) => match primitive_kind(name) {
                Some(kind) => Ok(self.push(kind)),
                None => self.reference(name, namespace, path),
            },
            Json::Array(branches) => {
                let mut ids = Vec::with_capacity(branches.len());
                for (i, branch) in branches.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    let id = self.parse(branch, namespace, path)?;
                    path.truncate(len);
                    ids.push(id);
                }
                self.check_union(&ids, path)?;
                Ok(self.push(Kind::Union(ids)))
            }
            Json::Object(obj) => self.parse_object(obj, namespace, path),
            other => Err(bad(
                path,
                format!("a schema must be a string, an object or an array, not {other}"),
            )),
        }
    }

    fn check_union(&self, ids: &[NodeId], path: &str) -> Result<(), SchemaError> {
        let mut seen = HashSet::new();
        for id in ids {
            let kind = &self.nodes[id.index()].kind;
            let key = match kind {
                Kind::Union(_) => {
                    return Err(bad(
                        path,
                        "a union may not immediately contain another union",
                    ));
                }
                Kind::Record(_) | Kind::Enum(_) | Kind::Fixed(_) => kind
                    .name()
                    .map(|n| n.full().to_string())
                    .unwrap_or_default(),
                other => other.type_name().to_string(),
            };
            if !seen.insert(key.clone()) {
                return Err(bad(
                    path,
                    format!("a union may not contain \"{key}\" twice"),
                ));
            }
        }
        Ok(())
    }

    fn parse_object(
        &mut self,
        obj: &Map<String, Json>,
        namespace: Option<&str>,
        path: &mut String,
    ) -> Result<NodeId, SchemaError> {
        let type_name = match obj.get("type") {
            Some(Json::String(t)) => t.as_str(),
            Some(nested @ (Json::Object(_) | Json::Array(_))) => {
                let len = path.len();
                path.push_str("/type");
                let id = self.parse(nested, namespace, path)?;
                path.truncate(len);
                return Ok(id);
            }
            Some(_) => return Err(bad(path, "\"type\" must be a string")),
            None => return Err(bad(path, "missing \"type\"")),
        };
        let id = match type_name {
            "record" | "error" => self.parse_record(obj, namespace, path)?,
            "enum" => self.parse_enum(obj, namespace, path)?,
            "fixed" => self.parse_fixed(obj, namespace, path)?,
            "array" => {
                let items = obj
                    .get("items")
                    .ok_or_else(|| bad(path, "array is missing \"items\""))?;
                let len = path.len();
                path.push_str("/items");
                let item = self.parse(items, namespace, path)?;
                path.truncate(len);
                self.push(Kind::Array(item))
            }
            "map" => {
                let values = obj
                    .get("values")
                    .ok_or_else(|| bad(path, "map is missing \"values\""))?;
                let len = path.len();
                path.push_str("/values");
                let value = self.parse(values, namespace, path)?;
                path.truncate(len);
                self.push(Kind::Map(value))
            }
            other => match primitive_kind(other) {
                Some(kind) => self.push(kind),
                // `{"type": "SomeName"}` refers to an already defined named type.
                None => return self.reference(other, namespace, path),
            },
        };
        let props = extra_props(obj, &TYPE_ATTRIBUTES);
        let logical = Logical::from_props(&props, &self.nodes[id.index()].kind);
        let node = &mut self.nodes[id.index()];
        node.props = props;
        if logical.is_some() {
            node.props.remove("logicalType");
            if let Some(Logical::Decimal { .. }) = logical {
                node.props.remove("precision");
                node.props.remove("scale");
            }
        }
        node.logical = logical;
        Ok(id)
    }

    fn define_name(
        &mut self,
        obj: &Map<String, Json>,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<(Name, Vec<String>, Option<String>), SchemaError> {
        let name = optional_str(obj, "name", path)?
            .ok_or_else(|| bad(path, "named type is missing \"name\""))?;
        let own_ns = optional_str(obj, "namespace", path)?;
        let ns = own_ns.or(namespace);
        let full = Name::new(name, ns);
        if !valid_full_name(full.full()) {
            return Err(bad(
                path,
                format!("\"{}\" is not a valid Avro name", full.full()),
            ));
        }
        if PRIMITIVES.contains(&full.full()) {
            return Err(bad(
                path,
                format!(
                    "\"{}\" is a primitive type and cannot be redefined",
                    full.full()
                ),
            ));
        }
        if self.names.contains_key(full.full()) {
            return Err(bad(path, format!("\"{}\" is defined twice", full.full())));
        }
        let alias_ns = full.namespace().map(str::to_string);
        let aliases = string_list(obj, "aliases", path)?
            .into_iter()
            .map(|a| Name::new(&a, alias_ns.as_deref()).full)
            .collect::<Vec<_>>();
        if let Some(bad_alias) = aliases.iter().find(|a| !valid_full_name(a)) {
            return Err(bad(
                path,
                format!("alias \"{bad_alias}\" is not a valid Avro name"),
            ));
        }
        let doc = optional_str(obj, "doc", path)?.map(str::to_string);
        Ok((full, aliases, doc))
    }

    fn parse_record(
        &mut self,
        obj: &Map<String, Json>,
        namespace: Option<&str>,
        path: &mut String,
    ) -> Result<NodeId, SchemaError> {
        let (name, aliases, doc) = self.define_name(obj, namespace, path)?;
        let inner_ns = name.namespace().map(str::to_string);
        // Registered before the fields are parsed, so fields may refer to the record itself.
        let id = self.push(Kind::Record(Record {
            name: name.clone(),
            aliases,
            doc,
            fields: Vec::new(),
        }));
        self.names.insert(name.full().to_string(), id);
        let fields_json = match obj.get("fields") {
            Some(Json::Array(f)) => f,
            Some(_) => return Err(bad(path, "\"fields\" must be a list")),
            None => return Err(bad(path, "record is missing \"fields\"")),
        };
        let mut fields = Vec::with_capacity(fields_json.len());
        let mut seen = HashSet::new();
        for (i, fj) in fields_json.iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("/fields/{i}"));
            let Json::Object(fobj) = fj else {
                return Err(bad(path, "a field must be an object"));
            };
            let fname = optional_str(fobj, "name", path)?
                .ok_or_else(|| bad(path, "field is missing \"name\""))?;
            if !valid_identifier(fname) {
                return Err(bad(path, format!("\"{fname}\" is not a valid field name")));
            }
            if !seen.insert(fname.to_string()) {
                return Err(bad(path, format!("field \"{fname}\" appears twice")));
            }
            let ftype = fobj
                .get("type")
                .ok_or_else(|| bad(path, format!("field \"{fname}\" is missing \"type\"")))?;
            let type_len = path.len();
            path.push_str("/type");
            let schema = self.parse(ftype, inner_ns.as_deref(), path)?;
            path.truncate(type_len);
            let order = match optional_str(fobj, "order", path)? {
                None | Some("ascending") => Order::Ascending,
                Some("descending") => Order::Descending,
                Some("ignore") => Order::Ignore,
                Some(o) => return Err(bad(path, format!("unknown field order \"{o}\""))),
            };
            fields.push(Field {
                name: fname.to_string(),
                aliases: string_list(fobj, "aliases", path)?,
                doc: optional_str(fobj, "doc", path)?.map(str::to_string),
                default: fobj.get("default").cloned(),
                order,
                schema,
                props: extra_props(fobj, &FIELD_ATTRIBUTES),
            });
            path.truncate(len);
        }
        if let Kind::Record(r) = &mut self.nodes[id.index()].kind {
            r.fields = fields;
        }
        Ok(id)
    }

    fn parse_enum(
        &mut self,
        obj: &Map<String, Json>,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<NodeId, SchemaError> {
        let (name, aliases, doc) = self.define_name(obj, namespace, path)?;
        let symbols = match obj.get("symbols") {
            Some(Json::Array(_)) => string_list(obj, "symbols", path)?,
            _ => return Err(bad(path, "enum is missing a \"symbols\" list")),
        };
        let mut seen = HashSet::new();
        for s in &symbols {
            if !valid_identifier(s) {
                return Err(bad(path, format!("\"{s}\" is not a valid enum symbol")));
            }
            if !seen.insert(s) {
                return Err(bad(path, format!("enum symbol \"{s}\" appears twice")));
            }
        }
        let default = match obj.get("default") {
            None => None,
            Some(Json::String(d)) => Some(symbols.iter().position(|s| s == d).ok_or_else(|| {
                bad(
                    path,
                    format!("enum default \"{d}\" is not one of its symbols"),
                )
            })? as u32),
            Some(_) => return Err(bad(path, "enum default must be a string")),
        };
        let id = self.push(Kind::Enum(Enum {
            name: name.clone(),
            aliases,
            doc,
            symbols,
            default,
        }));
        self.names.insert(name.full().to_string(), id);
        Ok(id)
    }

    fn parse_fixed(
        &mut self,
        obj: &Map<String, Json>,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<NodeId, SchemaError> {
        let (name, aliases, doc) = self.define_name(obj, namespace, path)?;
        let size = obj
            .get("size")
            .and_then(Json::as_u64)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| *s <= i32::MAX as usize)
            .ok_or_else(|| bad(path, "fixed needs a non-negative integer \"size\""))?;
        let id = self.push(Kind::Fixed(Fixed {
            name: name.clone(),
            aliases,
            doc,
            size,
        }));
        self.names.insert(name.full().to_string(), id);
        Ok(id)
    }
}

impl Schema {
    /// Field defaults that do not fit their field's type. Parsing accepts them, as the
    /// reference tests do (a reader then treats such a field as having no default); a
    /// registry or linter reports them.
    pub fn invalid_defaults(&self) -> Vec<SchemaError> {
        let mut out = Vec::new();
        for (_, node) in self.nodes() {
            if let Kind::Record(r) = &node.kind {
                for f in &r.fields {
                    if let Some(d) = &f.default
                        && !default_matches(self, f.schema, d, 0)
                    {
                        out.push(bad(
                            "",
                            format!(
                                "default {d} of field \"{}\" in {} does not match its type {}",
                                f.name,
                                r.name,
                                self.branch_label(f.schema)
                            ),
                        ));
                    }
                }
            }
        }
        out
    }
}

/// Whether a JSON default value is valid for a type. Unions accept a value of any branch
/// (Avro 1.12; 1.11 required the first branch).
pub fn default_matches(schema: &Schema, id: NodeId, json: &Json, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    match (schema.kind(id), json) {
        (Kind::Null, Json::Null) => true,
        (Kind::Boolean, Json::Bool(_)) => true,
        (Kind::Int, Json::Number(n)) => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
        (Kind::Long, Json::Number(n)) => n.as_i64().is_some(),
        (Kind::Float | Kind::Double, Json::Number(_)) => true,
        (Kind::Float | Kind::Double, Json::String(s)) => {
            matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity")
        }
        (Kind::Bytes, Json::String(s)) => s.chars().all(|c| (c as u32) < 256),
        (Kind::Fixed(f), Json::String(s)) => {
            s.chars().all(|c| (c as u32) < 256) && s.chars().count() == f.size
        }
        (Kind::String, Json::String(_)) => true,
        (Kind::Enum(e), Json::String(s)) => e.symbols.contains(s),
        (Kind::Array(items), Json::Array(values)) => values
            .iter()
            .all(|v| default_matches(schema, *items, v, depth + 1)),
        (Kind::Map(values), Json::Object(obj)) => obj
            .values()
            .all(|v| default_matches(schema, *values, v, depth + 1)),
        (Kind::Record(r), Json::Object(obj)) => r.fields.iter().all(|f| match obj.get(&f.name) {
            Some(v) => default_matches(schema, f.schema, v, depth + 1),
            None => f.default.is_some(),
        }),
        (Kind::Union(branches), v) => branches
            .iter()
            .any(|b| default_matches(schema, *b, v, depth + 1)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_against_enclosing_namespace_then_null_namespace() {
        let s = Schema::parse(
            r#"{"type":"record","name":"Outer","namespace":"a.b","fields":[
                {"name":"inner","type":{"type":"record","name":"Inner","fields":[]}},
                {"name":"again","type":"Inner"},
                {"name":"qualified","type":"a.b.Inner"}]}"#,
        )
        .unwrap();
        let Kind::Record(r) = s.kind(s.root()) else {
            panic!()
        };
        assert_eq!(r.name.full(), "a.b.Outer");
        assert_eq!(r.fields[0].schema, r.fields[1].schema);
        assert_eq!(r.fields[1].schema, r.fields[2].schema);
        assert_eq!(s.branch_label(r.fields[0].schema), "a.b.Inner");
    }

    #[test]
    fn recursive_reference_is_the_same_node() {
        let s = Schema::parse(
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
        )
        .unwrap();
        let Kind::Record(r) = s.kind(s.root()) else {
            panic!()
        };
        let Kind::Union(b) = s.kind(r.fields[0].schema) else {
            panic!()
        };
        assert_eq!(b[1], s.root());
    }

    #[test]
    fn rejects_what_java_rejects() {
        for (text, needle) in [
            (
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"Nope"}]}"#,
                "unknown type name \"Nope\"",
            ),
            (r#"["int","int"]"#, "twice"),
            (r#"["null",["int"]]"#, "another union"),
            (
                r#"{"type":"enum","name":"e","symbols":["A","A"]}"#,
                "appears twice",
            ),
            (
                r#"{"type":"record","name":"1bad","fields":[]}"#,
                "not a valid Avro name",
            ),
            (r#"{"type":"fixed","name":"f","size":-1}"#, "size"),
            (r#"{"type":"array"}"#, "items"),
            ("{", "not valid JSON"),
        ] {
            let err = Schema::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn error_names_the_json_pointer() {
        let err = Schema::parse(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":{"type":"array","items":"Missing"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "/fields/1/type/items");
    }

    #[test]
    fn invalid_defaults_are_reported_not_rejected() {
        let s = Schema::parse(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int","default":"x"}]}"#,
        )
        .unwrap();
        let errors = s.invalid_defaults();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("does not match its type int"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn union_default_may_match_any_branch() {
        let s = Schema::parse(r#"{"type":"record","name":"r","fields":[{"name":"a","type":["null","string"],"default":"x"}]}"#).unwrap();
        assert!(s.invalid_defaults().is_empty());
    }

    #[test]
    fn unknown_attributes_are_kept() {
        let s = Schema::parse(r#"{"type":"record","name":"r","meshlens.owner":"team-a","fields":[{"name":"a","type":"int","pii":true}]}"#).unwrap();
        let node = s.node(s.root());
        assert_eq!(node.props["meshlens.owner"], "team-a");
        let Kind::Record(r) = &node.kind else {
            panic!()
        };
        assert_eq!(r.fields[0].props["pii"], true);
    }
}
