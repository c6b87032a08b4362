//! The model's memory budget: 200,000 retained events, each request carrying a decoded Avro
//! order, fit in 300 MB. Measured with a counting allocator, so the figure is exact and the
//! test is not timing-dependent.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use meshlens::mesh::{Budget, Mesh};

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
    mix::with_payload_on_every_event(&mut events);
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
