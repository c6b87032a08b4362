//! `meshlens schema ...`: fingerprints, compatibility, level checks and structural diffs.
//! `compat` and `check` exit 0 when compatible, 1 when not, 2 on a usage or parse error, so
//! CI pipelines can gate a rollout on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::avro::compat::{Compatibility, Incompatibility, check};
use crate::avro::diff::{Change, Impact, diff};
use crate::avro::levels::{Direction, Level, check_level};
use crate::avro::{
    Schema, canonical_form, friendly::hex, md5_fingerprint, rabin_fingerprint, sha256_fingerprint,
};
use crate::registry::{RegistryClient, RegistryError, Store, VersionSpec};

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// Print a schema's fingerprint (or, with --pcf, its Parsing Canonical Form).
    Fingerprint {
        /// The schema file (.avsc).
        schema: PathBuf,
        /// Print only the Parsing Canonical Form.
        #[arg(long)]
        pcf: bool,
        /// The fingerprint: Avro's 64-bit Rabin (what single-object encoding carries), MD5 or SHA-256.
        #[arg(long, value_enum, default_value_t = Algorithm::Rabin)]
        algorithm: Algorithm,
    },
    /// Can a reader schema read data written with a writer schema? Exit 0 yes, 1 no, 2 error.
    Compat {
        /// The schema the consumer reads with (.avsc).
        #[arg(long)]
        reader: PathBuf,
        /// The schema the producer wrote with (.avsc).
        #[arg(long)]
        writer: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a new schema against a history at a compatibility level, as a Confluent
    /// registry would before accepting it: against schema files (oldest first), or against a
    /// subject's versions in a registry. Exit 0 compatible, 1 not, 2 error.
    Check {
        /// BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or
        /// NONE. Default: the subject's level with --registry, else BACKWARD.
        #[arg(long)]
        level: Option<Level>,
        /// The new schema.
        new: PathBuf,
        /// Earlier versions, oldest first (not with --registry).
        #[arg(required_unless_present = "registry", conflicts_with = "registry")]
        history: Vec<PathBuf>,
        /// A registry directory or URL holding the subject's versions.
        #[arg(long, value_name = "DIR|URL", requires = "subject")]
        registry: Option<String>,
        /// The subject to check against (with --registry).
        #[arg(long, requires = "registry")]
        subject: Option<String>,
        #[command(flatten)]
        registry_auth: super::registry::AuthArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what changed between two versions and what each change does to compatibility.
    Diff {
        /// The earlier version (.avsc).
        old: PathBuf,
        /// The later version (.avsc).
        new: PathBuf,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Algorithm {
    /// CRC-64-AVRO: Java's signed decimal, then the 8 single-object header bytes in hex.
    Rabin,
    Sha256,
    Md5,
}

pub fn run(cmd: SchemaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SchemaCommand::Fingerprint {
            schema,
            pcf,
            algorithm,
        } => fingerprint(&schema, pcf, algorithm),
        SchemaCommand::Compat {
            reader,
            writer,
            json,
        } => Ok(super::or_usage(|| compat(&reader, &writer, json))),
        SchemaCommand::Check {
            level,
            new,
            history,
            registry,
            subject,
            registry_auth,
            json,
        } => Ok(super::or_usage(|| {
            let (level, olds) = match (registry, &subject) {
                (Some(spec), Some(subject)) => {
                    subject_history(&spec, &registry_auth, subject, level)?
                }
                _ => {
                    let olds = history
                        .iter()
                        .map(|p| Ok((p.display().to_string(), super::read_schema(p)?)))
                        .collect::<anyhow::Result<_>>()?;
                    (level.unwrap_or_default(), olds)
                }
            };
            check_history(level, &new, &olds, subject.as_deref(), json)
        })),
        SchemaCommand::Diff { old, new, json } => {
            Ok(super::or_usage(|| show_diff(&old, &new, json)))
        }
    }
}

fn verdict(compatible: bool) -> ExitCode {
    if compatible {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fingerprint(path: &Path, pcf: bool, algorithm: Algorithm) -> anyhow::Result<ExitCode> {
    let schema = super::read_schema(path)?;
    if pcf {
        out!("{}", canonical_form(&schema));
        return Ok(ExitCode::SUCCESS);
    }
    match algorithm {
        Algorithm::Rabin => {
            let fp = rabin_fingerprint(&schema);
            out!("{fp} {}", hex(&fp.to_le_bytes()));
        }
        Algorithm::Sha256 => out!("{}", hex(&sha256_fingerprint(&schema))),
        Algorithm::Md5 => out!("{}", hex(&md5_fingerprint(&schema))),
    }
    Ok(ExitCode::SUCCESS)
}

fn incompatibility_json(i: &Incompatibility) -> serde_json::Value {
    json!({"kind": i.kind.as_str(), "location": i.location, "detail": i.detail, "message": i.message})
}

fn compat(reader: &Path, writer: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let (r, w) = (super::read_schema(reader)?, super::read_schema(writer)?);
    let result: Compatibility = check(&r, &w);
    if as_json {
        let out = json!({
            "compatible": result.is_compatible(),
            "incompatibilities": result.incompatibilities.iter().map(incompatibility_json).collect::<Vec<_>>(),
            "warnings": result.warnings.iter().map(|w| json!({"location": w.location, "message": w.message})).collect::<Vec<_>>(),
        });
        out!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let (rn, wn) = (reader.display(), writer.display());
        if result.is_compatible() {
            out!("compatible: {rn} can read data written with {wn}");
        } else {
            out!("incompatible: {rn} cannot read data written with {wn}");
            for i in &result.incompatibilities {
                out!("  {i}");
            }
        }
        for w in &result.warnings {
            out!("  warning at {}: {}", w.location, w.message);
        }
    }
    Ok(verdict(result.is_compatible()))
}

/// Earlier versions of a schema, oldest first, each with the label messages show.
type History = Vec<(String, Arc<Schema>)>;

/// A subject's live versions (oldest first, labelled `subject vN`) and the level that applies
/// to it, from a registry directory or URL. A subject the registry does not know has no
/// versions yet (a first version passes); a registry that cannot be read is an error.
fn subject_history(
    spec: &str,
    auth: &super::registry::AuthArgs,
    subject: &str,
    level: Option<Level>,
) -> anyhow::Result<(Level, History)> {
    let label = |v: u32| format!("{subject} v{v}");
    if !super::registry::is_url(spec) {
        let store = Store::open_read_only(Path::new(spec))?;
        let olds = none_if_missing(store.versions(subject, false))?
            .into_iter()
            .map(|v| {
                let stored = store.version(subject, VersionSpec::Number(v), false)?;
                Ok((label(v), stored.schema.schema.clone()))
            })
            .collect::<anyhow::Result<_>>()?;
        return Ok((
            level.unwrap_or_else(|| store.effective_level(subject)),
            olds,
        ));
    }
    let client = RegistryClient::new(spec, auth.auth())?;
    super::registry::block_on(async {
        let level = match level {
            Some(l) => l,
            None => match client.subject_level(subject).await? {
                Some(l) => l,
                None => client.global_level().await?,
            },
        };
        let mut olds = Vec::new();
        for v in none_if_missing(client.versions(subject, false).await)? {
            let raw = client.raw_version(subject, Some(v), false).await?;
            let refs = client.reference_texts(&raw.references).await?;
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            let schema = Schema::parse_with_references(&raw.schema, &refs)
                .with_context(|| format!("{subject} version {v} in the registry"))?;
            olds.push((label(v), Arc::new(schema)));
        }
        Ok((level, olds))
    })
}

/// A subject's version list, empty when the registry says the subject does not exist.
fn none_if_missing(versions: Result<Vec<u32>, RegistryError>) -> Result<Vec<u32>, RegistryError> {
    match versions {
        Err(e) if e.code() == 40401 => Ok(Vec::new()),
        other => other,
    }
}

/// Checks `new` against `olds` at `level`; `subject` names a registry subject they came from.
fn check_history(
    level: Level,
    new: &Path,
    olds: &History,
    subject: Option<&str>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let new_schema = super::read_schema(new)?;
    let refs: Vec<&Schema> = olds.iter().map(|(_, s)| s.as_ref()).collect();
    let report = check_level(level, &new_schema, &refs);
    let direction = |d: Direction| match d {
        Direction::NewReadsOld => "new reads old",
        Direction::OldReadsNew => "old reads new",
    };
    if as_json {
        let out = json!({
            "compatible": report.is_compatible(),
            "level": level.as_str(),
            "violations": report.violations.iter().map(|v| json!({
                "old": olds[v.old_index].0,
                "direction": direction(v.direction),
                "description": v.description(),
                "incompatibility": incompatibility_json(&v.incompatibility),
            })).collect::<Vec<_>>(),
            "warnings": report.warnings.iter().map(|w| json!({"location": w.location, "message": w.message})).collect::<Vec<_>>(),
        });
        out!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let (Some(subject), true) = (subject, olds.is_empty()) {
            out!("subject {subject} has no versions yet: nothing to be compatible with");
        } else if report.is_compatible() {
            out!(
                "compatible: {} passes {level} against {} earlier version(s)",
                new.display(),
                olds.len()
            );
        } else {
            out!("incompatible: {} fails {level}", new.display());
            for v in &report.violations {
                out!(
                    "  {} ({}): {} [{} at {}]",
                    olds[v.old_index].0,
                    direction(v.direction),
                    v.description(),
                    v.incompatibility.kind,
                    v.incompatibility.location
                );
            }
        }
        for w in &report.warnings {
            out!("  warning at {}: {}", w.location, w.message);
        }
    }
    Ok(verdict(report.is_compatible()))
}

fn impact_text(i: &Impact) -> String {
    match i {
        Impact::Compatible => "compatible".into(),
        Impact::Warning(w) => format!("warning: {w}"),
        Impact::Breaks(why) => format!("BREAKS: {why}"),
    }
}

fn impact_json(i: &Impact) -> serde_json::Value {
    match i {
        Impact::Compatible => json!({"verdict": "compatible"}),
        Impact::Warning(w) => json!({"verdict": "warning", "reason": w}),
        Impact::Breaks(why) => json!({"verdict": "breaks", "reason": why}),
    }
}

fn show_diff(old: &Path, new: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let (o, n) = (super::read_schema(old)?, super::read_schema(new)?);
    let changes: Vec<Change> = diff(&o, &n);
    if as_json {
        let out: Vec<_> = changes
            .iter()
            .map(|c| {
                json!({
                    "path": c.path,
                    "change": c.kind.to_string(),
                    "backward": impact_json(&c.backward),
                    "forward": impact_json(&c.forward),
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&out)?);
    } else if changes.is_empty() {
        out!("no changes");
    } else {
        for c in &changes {
            out!("{}: {}", c.path, c.kind);
            out!("    backward (new reads old): {}", impact_text(&c.backward));
            out!("    forward  (old reads new): {}", impact_text(&c.forward));
        }
    }
    Ok(ExitCode::SUCCESS)
}
