//! The model's memory budget: 200,000 retained events, each request carrying a decoded Avro
//! order, fit in 300 MB. Measured with a counting allocator, so the figure is exact and the
//! test is not timing-dependent.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use meshlens::mesh::{Budget, Mesh};
use meshlens::tap::{Event, Inspection, MessageSide};

#[path = "../benches/common/mix.rs"]
mod mix;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn two_hundred_thousand_events_with_payloads_fit_in_300_mb() {
    const RETAINED: usize = 200_000;
    let before = LIVE.load(Ordering::Relaxed);
    let mut events = mix::events(RETAINED.div_ceil(3));
    with_payload_on_every_event(&mut events);
    events.truncate(RETAINED);
    let mut mesh = Mesh::new(Budget::default());
    assert!(mesh.budget().log_capacity >= RETAINED);
    for e in &events {
        mesh.apply(e);
    }
    drop(events);
    let used = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    assert_eq!(mesh.log().len(), RETAINED);
    eprintln!(
        "model with {RETAINED} events: {:.1} MB ({} bytes/event)",
        used as f64 / 1e6,
        used / RETAINED
    );
    assert!(used < 300_000_000, "{used} bytes");
}

/// A decoded order as the proxy renders it (Avro JSON, ~450 bytes): what a retained event
/// carries when its body was inspected.
const ORDER_JSON: &str = r#"{"order_id":"7b0d8a52-4c1e-4f7e-9a51-2f0c6d1e9b3a","customer":{"id":"c-104223","email":"***","tier":"GOLD"},"placed_at":1764201600123,"currency":"EUR","total":{"bytes":"\u0001\u00e2\u0040"},"lines":[{"sku":"SKU-18822","quantity":2,"unit_price":"\u0000\u00c3\u0050"},{"sku":"SKU-20031","quantity":1,"unit_price":"\u0004\u00b0"}],"shipping":{"country":"DE","postcode":"10115","express":false},"channel":"web","coupon":null}"#;

/// Gives every event a decoded Avro inspection with `ORDER_JSON`: the worst case for the
/// model's memory budget.
fn with_payload_on_every_event(events: &mut [Event]) {
    for (i, e) in events.iter_mut().enumerate() {
        e.avro = vec![Inspection {
            side: Some(if i % 3 == 0 {
                MessageSide::Request
            } else {
                MessageSide::Response
            }),
            framing: "confluent".into(),
            subject: Some("shop.orders.OrderPlaced-value".into()),
            version: Some(3),
            schema_id: Some(17),
            fingerprint: Some(-4_214_411_390_012_356_123),
            contract: Some("shop/orders-contract".into()),
            mode: Some("audit".into()),
            valid: true,
            drift: Some("compatible".into()),
            reader_version: Some(2),
            value_json: Some(ORDER_JSON.into()),
            redacted: vec!["customer.email".into()],
            ..Inspection::default()
        }];
    }
}
