//! What a metrics source parses from the network: a `/metrics` page, then the edges, golden
//! metrics and policy hits derived from it, and a Prometheus query answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshlens::sources::metrics::{Scrape, derive};
use meshlens::sources::{prom_text, prometheus};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(e) = prom_text::parse(&text) {
        let scrape = Scrape {
            samples: e.samples,
            ..Scrape::default()
        };
        let later = scrape.increase_since(&scrape);
        if let Ok(facts) = derive(&[scrape, later]) {
            for stats in facts.edges.values() {
                let _ = stats.latency.quantile(0.99);
            }
            let _ = facts.to_delta(0, Some(1_000_000));
        }
    }
    let _ = prometheus::parse_vector("http://fuzz", 200, &text, "response_total");
});
