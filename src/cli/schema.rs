//! `meshlens schema ...`: canonical forms and fingerprints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::avro::{
    canonical_form, friendly::hex, md5_fingerprint, rabin_fingerprint, sha256_fingerprint,
};

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// Print a schema's fingerprint (or, with --pcf, its Parsing Canonical Form).
    Fingerprint {
        /// The schema file (.avsc).
        schema: PathBuf,
        /// Print only the Parsing Canonical Form.
        #[arg(long)]
        pcf: bool,
        #[arg(long, value_enum, default_value_t = Algorithm::Rabin)]
        algorithm: Algorithm,
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
        } => {
            let schema = super::read_schema(&schema)?;
            if pcf {
                println!("{}", canonical_form(&schema));
                return Ok(ExitCode::SUCCESS);
            }
            match algorithm {
                Algorithm::Rabin => {
                    let fp = rabin_fingerprint(&schema);
                    println!("{fp} {}", hex(&fp.to_le_bytes()));
                }
                Algorithm::Sha256 => println!("{}", hex(&sha256_fingerprint(&schema))),
                Algorithm::Md5 => println!("{}", hex(&md5_fingerprint(&schema))),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
