//! `meshlens avro decode`: detect the framing of a payload and print it as JSON.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};

use crate::avro::{
    Decoded, Part, PayloadDecoder, RegistryKind, SniffOptions, friendly::hex, to_avro_json,
    to_friendly_json,
};

#[derive(Subcommand, Debug)]
pub enum AvroCommand {
    /// Decode an Avro payload of any framing and print it as JSON.
    ///
    /// Detects object container files, single-object encoding, Confluent v0/v1, Apicurio,
    /// AWS Glue and schema ids in headers. A container file prints one JSON document per
    /// record, one per line.
    Decode(DecodeArgs),
}

#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// The payload file, or - for standard input.
    #[arg(default_value = "-")]
    input: String,
    /// Writer schema for payloads whose reference cannot otherwise be resolved (a bare
    /// datum, a registry id without a registry). For single-object encoding its fingerprint
    /// must match the payload's.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Reader schema: decode with schema resolution into this schema.
    #[arg(long)]
    reader: Option<PathBuf>,
    /// Output: the specification's Avro JSON encoding, or the friendly logical view.
    #[arg(long, value_enum, default_value_t = Format::Friendly)]
    format: Format,
    /// Indent the output (a single document; container records stay one per line).
    #[arg(long)]
    pretty: bool,
    /// `auto` detects the framing; `bare` reads the whole input as one datum of --schema.
    #[arg(long, value_enum, default_value_t = FramingChoice::Auto)]
    framing: FramingChoice,
    /// Whose ids a payload starting with 00 carries.
    #[arg(long, value_enum, default_value_t = IdKind::Confluent)]
    registry_kind: IdKind,
    /// A header that came with the payload, NAME=VALUE (VALUE as text, or hex:0011.. for
    /// binary Kafka headers such as __value_schema_id). Repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// The payload is a record key (reads __key_schema_id and apicurio.key.* headers).
    #[arg(long)]
    key: bool,
    /// Also print the framing, schema reference and writer schema to stderr.
    #[arg(long)]
    describe: bool,
    /// Where schema ids, fingerprints and subjects are looked up: a registry directory (as
    /// `meshlens registry serve` keeps) or the URL of a Confluent-compatible registry.
    #[arg(long, value_name = "DIR|URL")]
    registry: Option<String>,
    #[command(flatten)]
    registry_auth: super::registry::AuthArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    AvroJson,
    Friendly,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FramingChoice {
    Auto,
    Bare,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum IdKind {
    Confluent,
    Apicurio3,
    Apicurio2,
}

impl From<IdKind> for RegistryKind {
    fn from(k: IdKind) -> RegistryKind {
        match k {
            IdKind::Confluent => RegistryKind::Confluent,
            IdKind::Apicurio3 => RegistryKind::Apicurio3,
            IdKind::Apicurio2 => RegistryKind::Apicurio2,
        }
    }
}

fn parse_header(spec: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let (name, value) = spec
        .split_once('=')
        .with_context(|| format!("--header {spec:?}: expected NAME=VALUE"))?;
    let bytes = match value.strip_prefix("hex:") {
        Some(h) => {
            if !h.len().is_multiple_of(2) {
                bail!("--header {name}: hex value has an odd number of digits");
            }
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .with_context(|| format!("--header {name}: invalid hex"))?
        }
        None => value.as_bytes().to_vec(),
    };
    Ok((name.to_string(), bytes))
}

pub fn run(cmd: AvroCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AvroCommand::Decode(args) => decode(args),
    }
}

fn decode(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    // Usage errors first, before any file or registry is touched: they exit 2.
    if args.framing == FramingChoice::Bare && args.schema.is_none() {
        return Ok(super::usage_error(&anyhow::anyhow!(
            "--framing bare needs the writer schema (--schema)"
        )));
    }
    let headers = match args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<anyhow::Result<Vec<_>>>()
    {
        Ok(headers) => headers,
        Err(e) => return Ok(super::usage_error(&e)),
    };
    let options = SniffOptions {
        registry: args.registry_kind.into(),
        part: if args.key { Part::Key } else { Part::Value },
    };
    let mut decoder = PayloadDecoder::new(options).assume_bare(args.framing == FramingChoice::Bare);
    // A registry URL needs a runtime alive for as long as the decoder looks schemas up.
    let mut _runtime = None;
    if let Some(spec) = &args.registry {
        let (source, runtime) = super::registry::schema_source(spec, &args.registry_auth)?;
        decoder = decoder.with_source(source);
        _runtime = runtime;
    }
    if let Some(path) = &args.schema {
        decoder = decoder.with_schema(super::read_schema(path)?);
    }
    if let Some(path) = &args.reader {
        decoder = decoder.with_reader(super::read_schema(path)?);
    }
    let header_refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();

    let payload = if args.input == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input))?
    };
    let name = if args.input == "-" {
        "<stdin>"
    } else {
        args.input.as_str()
    };
    let decoded = decoder
        .decode(&payload, &header_refs)
        .with_context(|| name.to_string())?;

    if args.describe {
        describe(&decoded);
    }
    let single =
        decoded.values.len() == 1 && decoded.framing != crate::avro::Framing::ContainerFile;
    let indent = (args.pretty && single).then_some(2);
    let mut out = std::io::stdout().lock();
    for value in &decoded.values {
        let text = match args.format {
            Format::AvroJson => to_avro_json(&decoded.reader, value, indent),
            Format::Friendly => to_friendly_json(&decoded.reader, value, indent),
        };
        writeln!(out, "{text}").context("cannot write to standard output")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(d: &Decoded) {
    let w = &d.writer;
    eprintln!("framing: {}", d.framing);
    eprintln!("reference: {}", d.reference);
    eprintln!(
        "writer: {} (fingerprint {} / {}){}{}",
        w.schema.display_name(),
        w.fingerprint,
        hex(&w.fingerprint.to_le_bytes()),
        w.subject
            .as_deref()
            .map(|s| format!(", subject {s}"))
            .unwrap_or_default(),
        w.version
            .map(|v| format!(" version {v}"))
            .unwrap_or_default(),
    );
    if d.values.len() != 1 || d.framing == crate::avro::Framing::ContainerFile {
        eprintln!("records: {}", d.values.len());
    }
}
