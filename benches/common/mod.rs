//! Shared by several benches; each uses part of it.
#![allow(dead_code)]

pub mod mix;
