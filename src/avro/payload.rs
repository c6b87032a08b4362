//! From payload bytes to decoded values: sniff the framing, find the writer schema, decode
//! with a resolution plan that is built once per (writer, reader) pair and then reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::canonical::rabin_fingerprint;
use super::container::Container;
use super::decode::Decoder;
use super::error::AvroError;
use super::framing::{Framed, Framing, SchemaRef, SniffOptions, sniff};
use super::schema::Schema;
use super::value::Value;

/// A writer schema with what is known about where it came from.
#[derive(Debug, Clone)]
pub struct KnownSchema {
    pub schema: Arc<Schema>,
    /// CRC-64-AVRO of the canonical form, computed once.
    pub fingerprint: i64,
    pub subject: Option<String>,
    pub version: Option<u32>,
    pub id: Option<u32>,
}

impl KnownSchema {
    pub fn new(schema: Arc<Schema>) -> KnownSchema {
        let fingerprint = rabin_fingerprint(&schema);
        KnownSchema {
            schema,
            fingerprint,
            subject: None,
            version: None,
            id: None,
        }
    }
}

/// Where writer schemas are looked up (a registry, a directory, a cache).
pub trait SchemaSource: Send + Sync {
    /// `Ok(None)` when the source does not know the reference; `Err` when it could not be asked.
    fn lookup(&self, reference: &SchemaRef) -> Result<Option<KnownSchema>, String>;

    /// A subject's live versions, oldest first, for drift classification. Sources without
    /// subjects know none; an unknown subject has none.
    fn versions(&self, _subject: &str) -> Result<Vec<KnownSchema>, String> {
        Ok(Vec::new())
    }
}

/// Lets one source serve a `PayloadDecoder` and whoever else needs the same registry.
impl<S: SchemaSource + ?Sized> SchemaSource for Arc<S> {
    fn lookup(&self, reference: &SchemaRef) -> Result<Option<KnownSchema>, String> {
        (**self).lookup(reference)
    }

    fn versions(&self, subject: &str) -> Result<Vec<KnownSchema>, String> {
        (**self).versions(subject)
    }
}

/// A decoded payload: how it was framed, which schema wrote it, and its values (one, or
/// every record of a container file).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub framing: Framing,
    pub reference: SchemaRef,
    pub writer: KnownSchema,
    pub reader: Arc<Schema>,
    pub values: Vec<Value>,
}

/// Decodes payloads of any framing, with decoders cached by fingerprint pair.
pub struct PayloadDecoder {
    source: Option<Box<dyn SchemaSource>>,
    /// The writer for framings whose reference cannot otherwise be resolved.
    configured: Option<KnownSchema>,
    reader: Option<KnownSchema>,
    options: SniffOptions,
    /// Treat every payload as a bare datum of the configured schema.
    bare: bool,
    decoders: Mutex<HashMap<(i64, i64), Arc<Decoder>>>,
}

impl PayloadDecoder {
    pub fn new(options: SniffOptions) -> PayloadDecoder {
        PayloadDecoder {
            source: None,
            configured: None,
            reader: None,
            options,
            bare: false,
            decoders: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_source(mut self, source: Box<dyn SchemaSource>) -> PayloadDecoder {
        self.source = Some(source);
        self
    }

    pub fn with_schema(mut self, schema: Arc<Schema>) -> PayloadDecoder {
        self.configured = Some(KnownSchema::new(schema));
        self
    }

    pub fn with_reader(mut self, reader: Arc<Schema>) -> PayloadDecoder {
        self.reader = Some(KnownSchema::new(reader));
        self
    }

    pub fn assume_bare(mut self, bare: bool) -> PayloadDecoder {
        self.bare = bare;
        self
    }

    fn decoder_for(&self, writer: &KnownSchema) -> Arc<Decoder> {
        let reader = self.reader.as_ref().unwrap_or(writer);
        let key = (writer.fingerprint, reader.fingerprint);
        let mut cache = self.decoders.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| Arc::new(Decoder::new(writer.schema.clone(), reader.schema.clone())))
            .clone()
    }

    fn lookup(&self, reference: &SchemaRef) -> Result<Option<KnownSchema>, AvroError> {
        match &self.source {
            Some(source) => source
                .lookup(reference)
                .map_err(|e| AvroError::Framing(format!("could not look up {reference}: {e}"))),
            None => Ok(None),
        }
    }

    /// The writer schema a framed payload refers to.
    fn writer_for(&self, framed: &Framed<'_>) -> Result<KnownSchema, AvroError> {
        if let Some(found) = self.lookup(&framed.reference)? {
            return Ok(found);
        }
        let configured = self.configured.clone();
        match (&framed.reference, configured) {
            (SchemaRef::Fingerprint(fp), Some(c)) if c.fingerprint != *fp => {
                Err(AvroError::Framing(format!(
                    "the payload was written with the schema of fingerprint {fp}, but the given schema's fingerprint is {}",
                    c.fingerprint
                )))
            }
            (_, Some(c)) => Ok(c),
            (SchemaRef::Configured, None) => Err(AvroError::Framing(
                "no framing recognised: a bare datum needs a writer schema (--schema)".into(),
            )),
            (reference, None) if self.source.is_some() => Err(AvroError::Framing(format!(
                "{} refers to {reference}, which the registry does not have: give the writer schema (--schema)",
                framed.framing
            ))),
            (reference, None) => Err(AvroError::Framing(format!(
                "{} refers to {reference}, which is unknown here: give a registry or the writer schema (--schema)",
                framed.framing
            ))),
        }
    }

    /// Decodes one payload (and its headers: `(name, value)` pairs).
    pub fn decode(&self, payload: &[u8], headers: &[(&str, &[u8])]) -> Result<Decoded, AvroError> {
        let framed = if self.bare {
            Framed {
                framing: Framing::Bare,
                reference: SchemaRef::Configured,
                header_len: 0,
                datum: payload,
            }
        } else {
            sniff(payload, headers, self.options)?
        };
        if framed.framing == Framing::ContainerFile {
            return self.decode_container(payload);
        }
        let framed_result = self.writer_for(&framed).and_then(|writer| {
            let value = self
                .decoder_for(&writer)
                .decode(framed.datum)
                .map_err(|e| AvroError::Decode(e.shifted(framed.header_len)))?;
            Ok((writer, value))
        });
        match framed_result {
            Ok((writer, value)) => {
                Ok(self.decoded(framed.framing, framed.reference, writer, vec![value]))
            }
            // A bare datum can start with the bytes of a framing prefix; with a configured
            // schema, the whole payload decoding cleanly settles it.
            Err(first) => {
                if self.may_be_bare(framed.framing)
                    && let Some(writer) = self.configured.clone()
                    && let Ok(value) = self.decoder_for(&writer).decode(payload)
                {
                    return Ok(self.decoded(
                        Framing::Bare,
                        SchemaRef::Configured,
                        writer,
                        vec![value],
                    ));
                }
                Err(first)
            }
        }
    }

    fn may_be_bare(&self, framing: Framing) -> bool {
        matches!(
            framing,
            Framing::ConfluentV0
                | Framing::ConfluentV1
                | Framing::ApicurioContentId
                | Framing::ApicurioGlobalId
                | Framing::Glue
        )
    }

    fn decoded(
        &self,
        framing: Framing,
        reference: SchemaRef,
        writer: KnownSchema,
        values: Vec<Value>,
    ) -> Decoded {
        let reader = self
            .reader
            .as_ref()
            .map(|r| r.schema.clone())
            .unwrap_or_else(|| writer.schema.clone());
        Decoded {
            framing,
            reference,
            writer,
            reader,
            values,
        }
    }

    fn decode_container(&self, payload: &[u8]) -> Result<Decoded, AvroError> {
        let container = Container::open(payload)?;
        let writer = KnownSchema::new(container.schema().clone());
        let decoder = self.decoder_for(&writer);
        let mut values = Vec::new();
        for block in container.blocks() {
            values.extend(container.records(&decoder, &block?)?);
        }
        Ok(self.decoded(Framing::ContainerFile, SchemaRef::Embedded, writer, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneId(u32, KnownSchema);

    impl SchemaSource for OneId {
        fn lookup(&self, reference: &SchemaRef) -> Result<Option<KnownSchema>, String> {
            Ok((*reference == SchemaRef::ConfluentId(self.0)).then(|| self.1.clone()))
        }
    }

    fn schema(text: &str) -> Arc<Schema> {
        Arc::new(Schema::parse(text).unwrap())
    }

    #[test]
    fn confluent_id_resolves_through_the_source() {
        let mut known = KnownSchema::new(schema("\"string\""));
        known.subject = Some("greetings-value".into());
        let d = PayloadDecoder::new(SniffOptions::default()).with_source(Box::new(OneId(7, known)));
        let out = d.decode(&[0, 0, 0, 0, 7, 0x04, b'h', b'i'], &[]).unwrap();
        assert_eq!(out.framing, Framing::ConfluentV0);
        assert_eq!(out.writer.subject.as_deref(), Some("greetings-value"));
        assert_eq!(out.values, vec![Value::String("hi".into())]);
        let err = d
            .decode(&[0, 0, 0, 0, 8, 0x00], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schema id 8, which the registry does not have"),
            "{err}"
        );
    }

    #[test]
    fn single_object_fingerprint_must_match_the_given_schema() {
        let d = PayloadDecoder::new(SniffOptions::default()).with_schema(schema("\"null\""));
        let soe = [0xc3, 0x01, 0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63];
        assert_eq!(d.decode(&soe, &[]).unwrap().values, vec![Value::Null]);
        let d = PayloadDecoder::new(SniffOptions::default()).with_schema(schema("\"int\""));
        let err = d.decode(&soe, &[]).unwrap_err().to_string();
        assert!(err.contains("fingerprint"), "{err}");
    }

    #[test]
    fn a_bare_datum_that_looks_framed_decodes_as_bare() {
        // A record of two ints (0, 0, 0, 0, 1, 2) starts with the Confluent magic byte.
        let d = PayloadDecoder::new(SniffOptions::default()).with_schema(schema(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"},{"name":"c","type":"int"},{"name":"d","type":"int"},{"name":"e","type":"int"},{"name":"f","type":"int"}]}"#,
        ));
        let out = d.decode(&[0, 0, 0, 0, 2, 4], &[]).unwrap();
        assert_eq!(out.framing, Framing::Bare);
        // ...while a real Confluent frame decodes as one.
        let out = d.decode(&[0, 0, 0, 0, 1, 2, 4, 6, 8, 10, 12], &[]).unwrap();
        assert_eq!(out.framing, Framing::ConfluentV0);
    }

    #[test]
    fn reader_schema_resolves_the_writer() {
        let d = PayloadDecoder::new(SniffOptions::default())
            .with_schema(schema("\"int\""))
            .with_reader(schema("\"long\""))
            .assume_bare(true);
        let out = d.decode(&[0x04], &[]).unwrap();
        assert_eq!(out.values, vec![Value::Long(2)]);
        assert_eq!(d.decoders.lock().unwrap().len(), 1);
        d.decode(&[0x06], &[]).unwrap();
        assert_eq!(
            d.decoders.lock().unwrap().len(),
            1,
            "the plan is built once"
        );
    }
}
