//! Schema resolution compiled once per (writer, reader) pair.
//!
//! The plan turns the specification's resolution rules into a flat list of steps, so the
//! decoder never compares names, looks up fields or converts defaults while reading bytes.
//! Writer data the reader cannot represent becomes a `Fail` step: resolution only fails for
//! the messages that actually reach it (a union branch, an enum symbol), as in Java.

use std::collections::HashMap;

use super::schema::{Kind, NodeId, Schema};
use super::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepId(u32);

#[derive(Debug, Clone)]
pub enum FieldOp {
    /// Read the writer field into the reader field at `target`.
    Read { target: usize, step: StepId },
    /// The reader has no such field: skip the writer's bytes.
    Skip(NodeId),
}

#[derive(Debug, Clone)]
pub struct FieldStep {
    pub op: FieldOp,
    /// Writer field name, for error paths.
    pub name: Box<str>,
}

#[derive(Debug, Clone)]
pub enum Step {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    IntAsLong,
    IntAsFloat,
    IntAsDouble,
    LongAsFloat,
    LongAsDouble,
    FloatAsDouble,
    BytesAsString,
    StringAsBytes,
    Fixed(usize),
    /// Per writer symbol: the reader symbol index, or `None` when the reader lacks it and has
    /// no enum default.
    Enum(Box<[Option<u32>]>, Box<[Box<str>]>),
    Array(StepId),
    Map(StepId),
    Record {
        fields: Box<[FieldStep]>,
        reader_len: usize,
        /// Reader fields the writer lacks, with their defaults.
        defaults: Box<[(usize, Value)]>,
        /// Every writer field is read into the reader field at the same position, so values
        /// can be pushed in order (the common case: the same schema on both sides).
        in_order: bool,
    },
    /// The writer wrote a union: read its branch index and run that branch's step.
    WriterUnion(Box<[StepId]>),
    /// The reader expects a union the writer did not write: wrap in reader branch `branch`.
    ReaderUnion {
        branch: u32,
        step: StepId,
    },
    /// Writer data the reader cannot read; decoding fails with this reason if it gets here.
    Fail(Box<str>),
}

#[derive(Debug, Clone)]
pub struct Plan {
    steps: Vec<Step>,
    root: StepId,
}

impl Plan {
    pub fn new(writer: &Schema, reader: &Schema) -> Plan {
        let mut builder = Builder {
            writer,
            reader,
            steps: Vec::new(),
            memo: HashMap::new(),
        };
        let root = builder.resolve(writer.root(), reader.root());
        Plan {
            steps: builder.steps,
            root,
        }
    }

    pub fn root(&self) -> StepId {
        self.root
    }

    pub fn step(&self, id: StepId) -> &Step {
        &self.steps[id.0 as usize]
    }
}

struct Builder<'a> {
    writer: &'a Schema,
    reader: &'a Schema,
    steps: Vec<Step>,
    /// Named-type pairs already compiled, so recursive schemas compile to a cycle.
    memo: HashMap<(NodeId, NodeId), StepId>,
}

/// Java's rule: unqualified names match, or a reader alias equals the writer's full name.
pub fn names_match(writer: &Kind, reader: &Kind) -> bool {
    match (writer.name(), reader.name()) {
        (Some(w), Some(r)) => {
            w.name() == r.name() || reader.aliases().iter().any(|a| a == w.full())
        }
        _ => false,
    }
}

impl Builder<'_> {
    fn push(&mut self, step: Step) -> StepId {
        self.steps.push(step);
        StepId(self.steps.len() as u32 - 1)
    }

    fn fail(&mut self, w: NodeId, r: NodeId) -> StepId {
        let reason = format!(
            "writer type {} cannot be read as reader type {}",
            self.writer.branch_label(w),
            self.reader.branch_label(r)
        );
        self.push(Step::Fail(reason.into()))
    }

    fn resolve(&mut self, w: NodeId, r: NodeId) -> StepId {
        if let Some(id) = self.memo.get(&(w, r)) {
            return *id;
        }
        let (wk, rk) = (self.writer.kind(w), self.reader.kind(r));
        if let Kind::Union(branches) = wk {
            // Reserve the slot first: a recursive type may reach this union again.
            let id = self.push(Step::Null);
            self.memo.insert((w, r), id);
            let branches = branches.clone();
            let steps = branches.iter().map(|b| self.resolve(*b, r)).collect();
            self.steps[id.0 as usize] = Step::WriterUnion(steps);
            return id;
        }
        if let Kind::Union(branches) = rk {
            return match self.best_branch(w, branches) {
                Some((i, b)) => {
                    let step = self.resolve(w, b);
                    self.push(Step::ReaderUnion {
                        branch: i as u32,
                        step,
                    })
                }
                None => self.fail(w, r),
            };
        }
        let step = match (wk, rk) {
            (Kind::Null, Kind::Null) => Step::Null,
            (Kind::Boolean, Kind::Boolean) => Step::Boolean,
            (Kind::Int, Kind::Int) => Step::Int,
            (Kind::Int, Kind::Long) => Step::IntAsLong,
            (Kind::Int, Kind::Float) => Step::IntAsFloat,
            (Kind::Int, Kind::Double) => Step::IntAsDouble,
            (Kind::Long, Kind::Long) => Step::Long,
            (Kind::Long, Kind::Float) => Step::LongAsFloat,
            (Kind::Long, Kind::Double) => Step::LongAsDouble,
            (Kind::Float, Kind::Float) => Step::Float,
            (Kind::Float, Kind::Double) => Step::FloatAsDouble,
            (Kind::Double, Kind::Double) => Step::Double,
            (Kind::Bytes, Kind::Bytes) => Step::Bytes,
            (Kind::Bytes, Kind::String) => Step::BytesAsString,
            (Kind::String, Kind::String) => Step::String,
            (Kind::String, Kind::Bytes) => Step::StringAsBytes,
            (Kind::Fixed(wf), Kind::Fixed(rf)) if names_match(wk, rk) && wf.size == rf.size => {
                Step::Fixed(wf.size)
            }
            (Kind::Enum(we), Kind::Enum(re)) if names_match(wk, rk) => {
                let map = we
                    .symbols
                    .iter()
                    .map(|s| {
                        re.symbols
                            .iter()
                            .position(|x| x == s)
                            .map(|i| i as u32)
                            .or(re.default)
                    })
                    .collect();
                let names = we.symbols.iter().map(|s| s.as_str().into()).collect();
                Step::Enum(map, names)
            }
            (Kind::Array(wi), Kind::Array(ri)) => {
                let (wi, ri) = (*wi, *ri);
                let id = self.push(Step::Null);
                self.memo.insert((w, r), id);
                let items = self.resolve(wi, ri);
                self.steps[id.0 as usize] = Step::Array(items);
                return id;
            }
            (Kind::Map(wv), Kind::Map(rv)) => {
                let (wv, rv) = (*wv, *rv);
                let id = self.push(Step::Null);
                self.memo.insert((w, r), id);
                let values = self.resolve(wv, rv);
                self.steps[id.0 as usize] = Step::Map(values);
                return id;
            }
            (Kind::Record(_), Kind::Record(_)) if names_match(wk, rk) => return self.record(w, r),
            _ => return self.fail(w, r),
        };
        self.push(step)
    }

    fn record(&mut self, w: NodeId, r: NodeId) -> StepId {
        let id = self.push(Step::Null);
        self.memo.insert((w, r), id);
        let (Kind::Record(wr), Kind::Record(rr)) = (self.writer.kind(w), self.reader.kind(r))
        else {
            unreachable!("record() is only called for two records")
        };
        let mut covered = vec![false; rr.fields.len()];
        let mut fields = Vec::with_capacity(wr.fields.len());
        for wf in &wr.fields {
            let target = rr.field_index(&wf.name).or_else(|| {
                rr.fields
                    .iter()
                    .position(|rf| rf.aliases.contains(&wf.name))
            });
            let op = match target {
                Some(t) if !covered[t] => {
                    covered[t] = true;
                    FieldOp::Read {
                        target: t,
                        step: self.resolve(wf.schema, rr.fields[t].schema),
                    }
                }
                _ => FieldOp::Skip(wf.schema),
            };
            fields.push(FieldStep {
                op,
                name: wf.name.as_str().into(),
            });
        }
        let mut defaults = Vec::new();
        for (i, rf) in rr.fields.iter().enumerate().filter(|(i, _)| !covered[*i]) {
            match rf
                .default
                .as_ref()
                .and_then(|d| Value::from_default(self.reader, rf.schema, d))
            {
                Some(v) => defaults.push((i, v)),
                None => {
                    let reason = format!(
                        "reader field \"{}\" of {} is missing from the writer and has no default",
                        rf.name, rr.name
                    );
                    self.steps[id.0 as usize] = Step::Fail(reason.into());
                    return id;
                }
            }
        }
        let in_order = fields.len() == rr.fields.len()
            && fields
                .iter()
                .enumerate()
                .all(|(i, f)| matches!(f.op, FieldOp::Read { target, .. } if target == i));
        self.steps[id.0 as usize] = Step::Record {
            in_order,
            fields: fields.into(),
            reader_len: rr.fields.len(),
            defaults: defaults.into(),
        };
        id
    }

    /// Java's choice of reader branch for a writer type: an exact match first (same type,
    /// same full name), then a named type matched by unqualified name or alias, then the
    /// first branch the writer type promotes to.
    fn best_branch(&self, w: NodeId, branches: &[NodeId]) -> Option<(usize, NodeId)> {
        let wk = self.writer.kind(w);
        let exact = branches.iter().position(|b| {
            let bk = self.reader.kind(*b);
            std::mem::discriminant(bk) == std::mem::discriminant(wk)
                && match (wk.name(), bk.name()) {
                    (Some(wn), Some(bn)) => wn == bn,
                    _ => true,
                }
        });
        let by_name = || {
            branches.iter().position(|b| {
                let bk = self.reader.kind(*b);
                std::mem::discriminant(bk) == std::mem::discriminant(wk) && names_match(wk, bk)
            })
        };
        let promoted = || {
            branches.iter().position(|b| {
                matches!(
                    (wk, self.reader.kind(*b)),
                    (Kind::Int, Kind::Long | Kind::Float | Kind::Double)
                        | (Kind::Long, Kind::Float | Kind::Double)
                        | (Kind::Float, Kind::Double)
                        | (Kind::String, Kind::Bytes)
                        | (Kind::Bytes, Kind::String)
                )
            })
        };
        exact
            .or_else(by_name)
            .or_else(promoted)
            .map(|i| (i, branches[i]))
    }
}
