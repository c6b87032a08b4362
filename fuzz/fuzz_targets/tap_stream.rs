//! What a tap client and server parse from the network: a container stream fed in arbitrary
//! pieces (header, blocks, tap events) and a filter query.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshlens::avro::{Decoder, StreamReader};
use meshlens::tap::{Filter, codec};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let _ = Filter::from_query(&String::from_utf8_lossy(rest));
    let step = usize::from(split).max(1);
    let mut buf = Vec::new();
    let mut reader: Option<StreamReader> = None;
    for piece in rest.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match &mut reader {
                None => match StreamReader::header(&buf, 1 << 16, 1 << 20) {
                    Ok(Some((r, used))) => {
                        buf.drain(..used);
                        reader = Some(r);
                    }
                    Ok(None) => break,
                    Err(_) => return,
                },
                Some(r) => match r.block(&buf) {
                    Ok(Some((block, used))) => {
                        buf.drain(..used);
                        let d = Decoder::new(r.schema().clone(), codec::schema().clone());
                        if let Ok(values) = r.records(&d, &block) {
                            for v in &values {
                                let _ = codec::from_value(v);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                },
            }
        }
    }
});
