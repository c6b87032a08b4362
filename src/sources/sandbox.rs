//! The bundled demo sandbox as an event source: the cluster runs on its own tokio runtime in
//! a background thread, and its tap events cross into a bounded channel. A full channel
//! drops and counts, so a slow reader never holds up the proxies.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::sandbox::{Cluster, Manifest, Options, Ready, demo};
use crate::tap::Event;

/// Events queued for the reader; about a second of a busy sandbox.
pub const CHANNEL_CAPACITY: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    Stopped,
    Failed,
}

/// Called after events were queued; the app asks for a repaint there (coalesced on its side).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Where a running sandbox can be reached: what the views that read more than events need.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub ready: Ready,
    /// The live policy directory (scenario steps change it while the sandbox runs).
    pub policy_dir: PathBuf,
}

#[derive(Default)]
struct Shared {
    state: AtomicU8,
    dropped: AtomicU64,
    error: Mutex<Option<String>>,
    endpoints: Mutex<Option<Endpoints>>,
}

/// A running demo sandbox; dropping it stops the cluster and joins its thread.
pub struct SandboxSource {
    events: Receiver<Arc<Event>>,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SandboxSource {
    /// Starts the bundled storefront demo with its scenario; returns at once.
    pub fn start_demo(waker: Waker) -> SandboxSource {
        let (tx, events) = sync_channel(CHANNEL_CAPACITY);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Shared::default());
        let task_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox".into())
            .spawn(move || {
                let result = run(tx, stopped, waker, &task_shared);
                let state = match result {
                    Ok(()) => State::Stopped,
                    Err(e) => {
                        tracing::warn!("demo sandbox: {e}");
                        if let Ok(mut slot) = task_shared.error.lock() {
                            *slot = Some(e);
                        }
                        State::Failed
                    }
                };
                task_shared.state.store(state as u8, Ordering::Relaxed);
            })
            .ok();
        if thread.is_none() {
            shared.state.store(State::Failed as u8, Ordering::Relaxed);
        }
        SandboxSource {
            events,
            shared,
            stop: Some(stop),
            thread,
        }
    }

    /// The next queued event, without waiting.
    pub fn try_recv(&self) -> Option<Arc<Event>> {
        self.events.try_recv().ok()
    }

    pub fn state(&self) -> State {
        match self.shared.state.load(Ordering::Relaxed) {
            0 => State::Starting,
            1 => State::Running,
            2 => State::Stopped,
            _ => State::Failed,
        }
    }

    /// Why the source failed, if it did.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// The registry, tap credentials, workloads and policy directory, once running.
    pub fn endpoints(&self) -> Option<Endpoints> {
        self.shared.endpoints.lock().ok().and_then(|e| e.clone())
    }

    /// Events dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for SandboxSource {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    tx: SyncSender<Arc<Event>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    waker: Waker,
    shared: &Shared,
) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("meshlens-app-demo-{}", std::process::id()));
    let result = (|| {
        let path = demo::write(&dir).map_err(|e| e.to_string())?;
        let manifest = Manifest::load(&path).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        rt.block_on(async {
            let options = Options {
                seed: 1,
                scenario: true,
                time_scale: 1.0,
            };
            let cluster = Cluster::start(manifest, options)
                .await
                .map_err(|e| e.to_string())?;
            let mut sub = cluster.publisher().subscribe();
            if let Ok(mut slot) = shared.endpoints.lock() {
                *slot = Some(Endpoints {
                    ready: cluster.ready().clone(),
                    policy_dir: cluster.live_policy_dir().to_path_buf(),
                });
            }
            shared.state.store(State::Running as u8, Ordering::Relaxed);
            {
                let scenario = async {
                    cluster.play(|_| {}).await;
                    std::future::pending::<()>().await
                };
                tokio::pin!(scenario);
                loop {
                    tokio::select! {
                        e = sub.recv() => match e {
                            Some(e) => {
                                if let Err(TrySendError::Full(_)) = tx.try_send(e) {
                                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                                }
                                waker();
                            }
                            None => break,
                        },
                        _ = &mut scenario => {}
                        _ = &mut stopped => break,
                    }
                }
            }
            cluster.shutdown().await;
            Ok(())
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
