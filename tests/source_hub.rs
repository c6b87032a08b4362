//! The source hub against real sockets: the demo sandbox runs in it, and a second source
//! taps one of the sandbox's proxies over mTLS with the credentials the sandbox wrote.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshlens::sources::hub::{Command, Hub, Spec, State, Status, TapAuth};

fn wait(hub: &mut Hub, index: usize, what: &str, done: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        while hub.try_recv().is_some() {}
        let s = hub.statuses().remove(index);
        if done(&s) {
            return s;
        }
        assert_ne!(s.state, State::Failed, "{what}: {:?}", s.error);
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_remote_tap_source_streams_from_a_sandbox_proxy() {
    let mut hub = Hub::new(Arc::new(|| {})).unwrap();
    hub.execute(Command::Start {
        spec: Spec::Sandbox { manifest: None },
        replace: false,
    });
    let sandbox = wait(&mut hub, 0, "the sandbox", |s| s.endpoints.is_some());
    let ready = sandbox.endpoints.unwrap().ready;
    let orders = ready
        .workloads
        .iter()
        .find(|w| w.name == "orders")
        .unwrap_or(&ready.workloads[0]);
    let tap = hub
        .execute(Command::Start {
            spec: Spec::Tap {
                addrs: vec![orders.admin.clone()],
                auth: TapAuth::Mtls {
                    ca: ready.tap.ca.clone(),
                    cert: ready.tap.cert.clone(),
                    key: ready.tap.key.clone(),
                },
            },
            replace: false,
        })
        .unwrap();
    let s = wait(&mut hub, 1, "tap events", |s| s.events > 0);
    assert_eq!(s.state, State::Connected);
    assert!(s.detail[0].contains("streaming"), "{:?}", s.detail);
    hub.execute(Command::Stop(tap));
    wait(&mut hub, 1, "the tap to stop", |s| {
        s.state == State::Stopped
    });
    let stopping = Instant::now();
    drop(hub);
    assert!(stopping.elapsed() < Duration::from_secs(20));
}
