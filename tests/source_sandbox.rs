//! The demo sandbox as the app's event source: real proxies on loopback, events through the
//! bounded channel, the waker called, and a stop that returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshlens::mesh::Mesh;
use meshlens::sources::sandbox::{SandboxSource, State};

#[test]
fn demo_sandbox_feeds_the_model_and_stops() {
    let wakes = Arc::new(AtomicU64::new(0));
    let counter = wakes.clone();
    let source = SandboxSource::start_demo(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    let mut mesh = Mesh::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while mesh.graph().edges().count() < 3 && Instant::now() < deadline {
        match source.try_recv() {
            Some(e) => mesh.apply(&e),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
        assert_ne!(source.state(), State::Failed, "{:?}", source.error());
    }
    assert!(
        mesh.graph().edges().count() >= 3,
        "only {} edges after 60 s",
        mesh.graph().edges().count()
    );
    assert_eq!(source.state(), State::Running);
    let endpoints = source
        .endpoints()
        .expect("a running sandbox says where it listens");
    assert!(endpoints.ready.registry.starts_with("http://127.0.0.1:"));
    assert!(endpoints.policy_dir.is_dir(), "{:?}", endpoints.policy_dir);
    assert!(endpoints.ready.workloads.len() >= 6);
    assert!(wakes.load(Ordering::Relaxed) > 0);
    let stopping = Instant::now();
    drop(source);
    assert!(stopping.elapsed() < Duration::from_secs(20));
}
