//! Several sources feeding the app at once: sandboxes, remote proxies' tap streams, metrics
//! followers and recording replays, all on one tokio runtime owned by the hub, all sending
//! into ONE bounded channel the UI thread drains. The UI never waits on a source: it sends
//! [`Command`]s, reads each source's [`Status`], and pulls [`Message`]s. Live sources drop
//! (and count) what a full channel cannot take; a replay waits instead, so it loses nothing.
//! The live stream can also be written to a recording while it is shown.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::fetch::MetricsTarget;
use super::poll::{self, Feed, Update};
use super::replay::{self, Replay, Speed};
use super::sandbox::{self, Endpoints, Waker, Which};
use crate::mesh::metrics::MetricsDelta;
use crate::tap::client::{Auth, ConnState, TapClient, TapTarget};
use crate::tap::recording::{Recorder, Recording};
use crate::tap::{Event, Filter};

/// Messages queued for the UI; about a second of a busy mesh.
pub const CHANNEL_CAPACITY: usize = 8192;
/// Events queued for the recorder before it drops them.
const RECORDER_CAPACITY: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u64);

/// How to reach a remote proxy's tap. Only file paths: the secrets stay in their files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TapAuth {
    Mtls {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    Token {
        file: PathBuf,
    },
}

/// Where metrics come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricsFeed {
    /// Proxies' `/metrics` URLs or saved files, each `[NS/NAME=]URL-or-FILE`.
    Targets(Vec<String>),
    /// A Prometheus server's base URL.
    Prometheus(String),
}

/// What a source is: all a restart needs, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Spec {
    /// The bundled demo (`None`) or a sandbox manifest file.
    Sandbox { manifest: Option<PathBuf> },
    /// Proxies' admin addresses (`host:port`), tapped over mTLS or with a token.
    Tap { addrs: Vec<String>, auth: TapAuth },
    /// Metrics read every `every_ms`.
    Metrics { feed: MetricsFeed, every_ms: u64 },
    /// A recording file, replayed with a timeline.
    Recording { path: PathBuf },
}

impl Spec {
    /// A short name for lists and the status bar.
    pub fn label(&self) -> String {
        match self {
            Spec::Sandbox { manifest: None } => "demo sandbox".into(),
            Spec::Sandbox { manifest: Some(p) } => format!("sandbox {}", file_name(p)),
            Spec::Tap { addrs, .. } => match addrs.as_slice() {
                [one] => format!("tap {one}"),
                [first, ..] => format!("tap {first} +{}", addrs.len() - 1),
                [] => "tap".into(),
            },
            Spec::Metrics {
                feed: MetricsFeed::Prometheus(url),
                ..
            } => format!("prometheus {url}"),
            Spec::Metrics {
                feed: MetricsFeed::Targets(t),
                ..
            } => match t.as_slice() {
                [one] => format!("metrics {one}"),
                [first, ..] => format!("metrics {first} +{}", t.len() - 1),
                [] => "metrics".into(),
            },
            Spec::Recording { path } => format!("recording {}", file_name(path)),
        }
    }

    /// Whether its events happen now (a replay's happened before).
    pub fn is_live(&self) -> bool {
        !matches!(self, Spec::Recording { .. })
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Connected,
    /// Connected before (or trying again) after an error; `Status::error` says which.
    Reconnecting,
    Stopped,
    Failed,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Connected => "connected",
            State::Reconnecting => "reconnecting",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// Where a replay stands, for its timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStatus {
    /// First and last event times (Unix µs); `None` for an empty recording.
    pub span: Option<(i64, i64)>,
    /// The time of the last event sent.
    pub position: Option<i64>,
    pub paused: bool,
    pub speed: Speed,
}

/// One source as the UI shows it.
#[derive(Debug, Clone)]
pub struct Status {
    pub id: SourceId,
    pub spec: Spec,
    pub state: State,
    /// When `state` last changed: a spinner shows only for slow starts.
    pub since: Instant,
    /// The last error, in words.
    pub error: Option<String>,
    /// One line per connection (a tap source's proxies).
    pub detail: Vec<String>,
    /// Events (or metrics updates) delivered.
    pub events: u64,
    /// Events dropped on a full channel plus those the proxies reported lost.
    pub lost: u64,
    /// Of `lost`, those dropped here on a full channel (the model never heard of them).
    pub dropped: u64,
    /// Delivered per second, over the last whole second or more.
    pub rate: f64,
    pub replay: Option<ReplayStatus>,
    /// A running sandbox's registry, tap credentials and workloads.
    pub endpoints: Option<Endpoints>,
}

impl Status {
    pub fn new(id: SourceId, spec: Spec, state: State) -> Status {
        Status {
            id,
            spec,
            state,
            since: Instant::now(),
            error: None,
            detail: Vec::new(),
            events: 0,
            lost: 0,
            dropped: 0,
            rate: 0.0,
            replay: None,
            endpoints: None,
        }
    }

    fn set_state(&mut self, state: State) {
        if self.state != state {
            self.state = state;
            self.since = Instant::now();
        }
    }

    pub fn running(&self) -> bool {
        !matches!(self.state, State::Stopped | State::Failed)
    }
}

/// What the UI drains: tap events, and metrics deltas (counts, not events).
#[derive(Debug)]
pub enum Message {
    Event(Arc<Event>),
    Metrics(MetricsDelta),
}

/// What the UI asks of the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Starts a new source; with `replace`, every other source is removed first and what
    /// they sent but the UI has not drained is discarded (the UI starts a new model).
    Start {
        spec: Spec,
        replace: bool,
    },
    /// Lists a source without starting it (restored from the last run).
    Add(Spec),
    /// Starts a stopped or failed source again.
    Restart(SourceId),
    Stop(SourceId),
    Remove(SourceId),
    /// Seek, pause, resume or speed for a replay.
    Replay(SourceId, replay::Command),
    /// Writes the events the UI drains from now on to a new recording file.
    Record(PathBuf),
    StopRecording,
}

impl Command {
    /// Whether the UI should start a new model before the hub runs this command.
    pub fn resets_model(&self) -> bool {
        matches!(
            self,
            Command::Start { replace: true, .. } | Command::Replay(_, replay::Command::Seek(_))
        )
    }
}

/// The recording of the live stream, as the UI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderStatus {
    pub path: PathBuf,
    pub events: u64,
    /// Events the recorder could not keep up with.
    pub dropped: u64,
    pub active: bool,
    pub error: Option<String>,
}

enum Control {
    Stop,
    Replay(replay::Command),
}

struct Entry {
    id: SourceId,
    status: Arc<Mutex<Status>>,
    control: Option<mpsc::UnboundedSender<Control>>,
    /// Events counted at the last rate sample.
    sample: (Instant, u64),
}

struct RecorderHandle {
    events: Option<std_mpsc::SyncSender<Arc<Event>>>,
    status: Arc<Mutex<RecorderStatus>>,
}

pub struct Hub {
    runtime: tokio::runtime::Runtime,
    tx: mpsc::Sender<(SourceId, Message)>,
    rx: mpsc::Receiver<(SourceId, Message)>,
    waker: Waker,
    entries: Vec<Entry>,
    next_id: u64,
    /// Messages from sources numbered below this were replaced: discarded.
    floor: u64,
    recorder: Option<RecorderHandle>,
}

impl Hub {
    /// `waker` is called after messages were queued; the app requests a (coalesced)
    /// repaint there.
    pub fn new(waker: Waker) -> Result<Hub, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sources")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        Ok(Hub {
            runtime,
            tx,
            rx,
            waker,
            entries: Vec::new(),
            next_id: 1,
            floor: 0,
            recorder: None,
        })
    }

    /// Runs one command; never waits on a source.
    pub fn execute(&mut self, command: Command) -> Option<SourceId> {
        match command {
            Command::Start { spec, replace } => {
                if replace {
                    for e in std::mem::take(&mut self.entries) {
                        stop(&e);
                    }
                    self.floor = self.next_id;
                }
                let id = self.add(spec);
                self.start(id);
                return Some(id);
            }
            Command::Add(spec) => return Some(self.add(spec)),
            Command::Restart(id) => self.start(id),
            Command::Stop(id) => {
                if let Some(e) = self.entry(id) {
                    stop(e);
                }
            }
            Command::Remove(id) => {
                if let Some(i) = self.entries.iter().position(|e| e.id == id) {
                    stop(&self.entries.remove(i));
                }
            }
            Command::Replay(id, command) => self.replay(id, command),
            Command::Record(path) => self.record(path),
            Command::StopRecording => {
                if let Some(r) = &mut self.recorder {
                    r.events = None;
                }
            }
        }
        None
    }

    fn add(&mut self, spec: Spec) -> SourceId {
        let id = SourceId(self.next_id);
        self.next_id += 1;
        self.entries.push(Entry {
            id,
            status: Arc::new(Mutex::new(Status::new(id, spec, State::Stopped))),
            control: None,
            sample: (Instant::now(), 0),
        });
        id
    }

    fn entry(&self, id: SourceId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    fn start(&mut self, id: SourceId) {
        let Some(entry) = self.entries.iter_mut().find(|e| e.id == id) else {
            return;
        };
        if entry.control.as_ref().is_some_and(|c| !c.is_closed()) {
            return;
        }
        let spec = {
            let Ok(mut s) = entry.status.lock() else {
                return;
            };
            let spec = s.spec.clone();
            *s = Status::new(id, spec.clone(), State::Starting);
            spec
        };
        entry.sample = (Instant::now(), 0);
        let (control, commands) = mpsc::unbounded_channel();
        entry.control = Some(control);
        let ctx = Ctx {
            id,
            tx: self.tx.clone(),
            waker: self.waker.clone(),
            status: entry.status.clone(),
        };
        self.runtime.spawn(async move {
            let result = match spec {
                Spec::Sandbox { manifest } => run_sandbox(manifest, &ctx, commands).await,
                Spec::Tap { addrs, auth } => run_tap(addrs, auth, &ctx, commands).await,
                Spec::Metrics { feed, every_ms } => {
                    run_metrics(feed, every_ms, &ctx, commands).await
                }
                Spec::Recording { path } => run_replay(path, &ctx, commands).await,
            };
            ctx.set(|s| match result {
                Ok(()) => s.set_state(State::Stopped),
                Err(e) => {
                    tracing::warn!("{}: {e}", s.spec.label());
                    s.error = Some(e);
                    s.set_state(State::Failed);
                }
            });
            (ctx.waker)();
        });
    }

    fn replay(&mut self, id: SourceId, command: replay::Command) {
        let Some(entry) = self.entry(id) else { return };
        if let Ok(mut s) = entry.status.lock()
            && let Some(r) = &mut s.replay
        {
            match command {
                replay::Command::Pause => r.paused = true,
                replay::Command::Resume => r.paused = false,
                replay::Command::Speed(speed) => r.speed = speed,
                replay::Command::Seek(t) => r.position = Some(t),
                replay::Command::Stop => {}
            }
        }
        // After the status, so the replay's own reports come later and win.
        if let Some(c) = &entry.control {
            let _ = c.send(Control::Replay(command));
        }
    }

    fn record(&mut self, path: PathBuf) {
        let (events, rx) = std_mpsc::sync_channel(RECORDER_CAPACITY);
        let status = Arc::new(Mutex::new(RecorderStatus {
            path: path.clone(),
            events: 0,
            dropped: 0,
            active: true,
            error: None,
        }));
        let shared = status.clone();
        let waker = self.waker.clone();
        self.runtime.spawn_blocking(move || {
            let result = write_recording(&path, rx, &shared);
            if let Ok(mut s) = shared.lock() {
                s.active = false;
                if let Err(e) = result {
                    s.error = Some(e);
                }
            }
            waker();
        });
        self.recorder = Some(RecorderHandle {
            events: Some(events),
            status,
        });
    }

    /// The next message, without waiting; what a replaced source sent is skipped, and
    /// events go to the recorder too while one runs.
    pub fn try_recv(&mut self) -> Option<Message> {
        loop {
            let (id, message) = self.rx.try_recv().ok()?;
            if id.0 < self.floor {
                continue;
            }
            if let (Message::Event(e), Some(r)) = (&message, &self.recorder)
                && let Some(events) = &r.events
                && events.try_send(e.clone()).is_err()
                && let Ok(mut s) = r.status.lock()
            {
                s.dropped += 1;
            }
            return Some(message);
        }
    }

    /// Every source, in the order they were added; rates are brought up to date.
    pub fn statuses(&mut self) -> Vec<Status> {
        let now = Instant::now();
        self.entries
            .iter_mut()
            .filter_map(|e| {
                let mut s = e.status.lock().ok()?;
                let (at, count) = e.sample;
                let elapsed = now.saturating_duration_since(at);
                if !s.running() {
                    s.rate = 0.0;
                } else if elapsed >= Duration::from_secs(1) {
                    s.rate = s.events.saturating_sub(count) as f64 / elapsed.as_secs_f64();
                    e.sample = (now, s.events);
                }
                Some(s.clone())
            })
            .collect()
    }

    pub fn recorder(&self) -> Option<RecorderStatus> {
        self.recorder
            .as_ref()
            .and_then(|r| r.status.lock().ok().map(|s| s.clone()))
    }

    /// The first running sandbox's endpoints, for views that read more than events.
    pub fn sandbox_endpoints(&self) -> Option<Endpoints> {
        self.entries
            .iter()
            .find_map(|e| e.status.lock().ok()?.endpoints.clone())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for e in &self.entries {
            stop(e);
        }
        if let Some(r) = &mut self.recorder {
            r.events = None;
        }
        // Gives sandboxes a moment to shut their proxies down and the recorder to finish.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && (self
                .entries
                .iter()
                .any(|e| e.status.lock().is_ok_and(|s| s.running()))
                || self.recorder().is_some_and(|r| r.active))
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn stop(entry: &Entry) {
    if let Some(c) = &entry.control {
        let _ = c.send(Control::Stop);
    }
}

/// What a source's task needs to report.
struct Ctx {
    id: SourceId,
    tx: mpsc::Sender<(SourceId, Message)>,
    waker: Waker,
    status: Arc<Mutex<Status>>,
}

impl Ctx {
    fn set(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// A live event: dropped and counted when the channel is full.
    fn offer(&self, event: Arc<Event>) {
        let sent = self.tx.try_send((self.id, Message::Event(event))).is_ok();
        self.set(|s| {
            if sent {
                s.events += 1;
            } else {
                s.lost += 1;
                s.dropped += 1;
            }
        });
        (self.waker)();
    }

    /// A message that must arrive (a replay's event, a metrics delta): waits for room.
    async fn deliver(&self, message: Message) -> bool {
        let sent = self.tx.send((self.id, message)).await.is_ok();
        self.set(|s| s.events += 1);
        (self.waker)();
        sent
    }
}

/// Completes when the UI asks this source to stop (or forgets it).
async fn stopped(commands: &mut mpsc::UnboundedReceiver<Control>) {
    while let Some(c) = commands.recv().await {
        if let Control::Stop = c {
            return;
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the reading task failed: {e}"))?
}

async fn run_sandbox(
    manifest: Option<PathBuf>,
    ctx: &Ctx,
    mut commands: mpsc::UnboundedReceiver<Control>,
) -> Result<(), String> {
    let which = manifest.map_or(Which::Demo, Which::Manifest);
    let dir = sandbox::scratch_dir();
    let scratch = dir.clone();
    let loaded = blocking(move || sandbox::load(&which, &scratch)).await;
    let result = match loaded {
        Ok(manifest) => {
            sandbox::serve(
                manifest,
                stopped(&mut commands),
                |endpoints| {
                    ctx.set(|s| {
                        s.endpoints = Some(endpoints);
                        s.set_state(State::Connected);
                    });
                    (ctx.waker)();
                },
                |e| ctx.offer(e),
            )
            .await
        }
        Err(e) => Err(e),
    };
    ctx.set(|s| s.endpoints = None);
    let _ = blocking(move || {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
    result
}

async fn run_tap(
    addrs: Vec<String>,
    auth: TapAuth,
    ctx: &Ctx,
    mut commands: mpsc::UnboundedReceiver<Control>,
) -> Result<(), String> {
    let auth = blocking(move || {
        match &auth {
            TapAuth::Mtls { ca, cert, key } => Auth::mtls_from_files(ca, cert, key),
            TapAuth::Token { file } => Auth::token_from_file(file),
        }
        .map_err(|e| e.to_string())
    })
    .await?;
    let (tx, mut events) = mpsc::channel(1024);
    let client = TapClient::start(
        TapTarget {
            addrs,
            auth,
            filter: Filter::default(),
        },
        tx,
    );
    let mut status = client.status();
    let mut connected_once = false;
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(e) => ctx.offer(Arc::new(e)),
                None => break,
            },
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let all = status.borrow_and_update().clone();
                let streaming = all.iter().any(|c| matches!(c.state, ConnState::Streaming { .. }));
                connected_once |= streaming;
                let error = all.iter().find_map(|c| match &c.state {
                    ConnState::Retrying { error, .. } => Some(format!("{}: {error}", c.addr)),
                    _ => None,
                });
                let reported: u64 = all.iter().map(|c| c.lost).sum();
                ctx.set(|s| {
                    s.detail = all.iter().map(|c| format!("{}: {}", c.addr, c.state)).collect();
                    s.error = error.clone();
                    s.lost = s.dropped + reported;
                    s.set_state(match (streaming, error.is_some(), connected_once) {
                        (true, _, _) => State::Connected,
                        (false, true, _) | (false, false, true) => State::Reconnecting,
                        (false, false, false) => State::Starting,
                    });
                });
                (ctx.waker)();
            }
            _ = stopped(&mut commands) => break,
        }
    }
    client.stop().await;
    Ok(())
}

async fn run_metrics(
    feed: MetricsFeed,
    every_ms: u64,
    ctx: &Ctx,
    mut commands: mpsc::UnboundedReceiver<Control>,
) -> Result<(), String> {
    let feed = match feed {
        MetricsFeed::Prometheus(url) => Feed::Prometheus(url),
        MetricsFeed::Targets(targets) => Feed::Targets(
            targets
                .iter()
                .map(|t| t.parse::<MetricsTarget>().map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
        ),
    };
    let (tx, mut updates) = mpsc::channel(16);
    let follow = tokio::spawn(poll::follow(feed, Duration::from_millis(every_ms), tx));
    loop {
        tokio::select! {
            u = updates.recv() => match u {
                Some(Update::Metrics(delta)) => {
                    ctx.set(|s| {
                        s.error = None;
                        s.set_state(State::Connected);
                    });
                    if !ctx.deliver(Message::Metrics(delta)).await {
                        break;
                    }
                }
                Some(Update::Error(e)) => {
                    ctx.set(|s| {
                        s.error = Some(e.to_string());
                        s.set_state(State::Reconnecting);
                    });
                    (ctx.waker)();
                }
                None => break,
            },
            _ = stopped(&mut commands) => break,
        }
    }
    follow.abort();
    Ok(())
}

async fn run_replay(
    path: PathBuf,
    ctx: &Ctx,
    mut commands: mpsc::UnboundedReceiver<Control>,
) -> Result<(), String> {
    // The timeline needs the span at once, so every block's times are read here; seeks
    // then find their block without reading again.
    let (recording, span) = blocking(move || {
        let mut recording = Recording::open(&path).map_err(|e| e.to_string())?;
        let span = recording.span().map_err(|e| e.to_string())?;
        Ok((recording, span))
    })
    .await?;
    let speed = Speed::Times(1.0);
    ctx.set(|s| {
        s.replay = Some(ReplayStatus {
            span,
            position: None,
            paused: false,
            speed,
        });
        s.set_state(State::Connected);
    });
    (ctx.waker)();
    // Batches: a whole block each when unpaced.
    let (tx, mut events) = mpsc::channel(16);
    let options = replay::Options {
        speed,
        from_us: None,
        hold_at_end: true,
    };
    let replay = Replay::start(recording, options, tx);
    let mut position = replay.position();
    'events: loop {
        tokio::select! {
            batch = events.recv() => match batch {
                Some(batch) => {
                    let mut at = None;
                    for e in batch.into_events() {
                        at = Some(e.time_us);
                        if !ctx.deliver(Message::Event(Arc::new(e))).await {
                            break 'events;
                        }
                    }
                    // The position watch may not fire when a seek lands where it stood.
                    ctx.set(|s| {
                        if let Some(r) = &mut s.replay {
                            r.position = at.or(r.position);
                        }
                    });
                }
                None => break,
            },
            changed = position.changed() => {
                if changed.is_err() {
                    break;
                }
                let at = *position.borrow_and_update();
                ctx.set(|s| {
                    if let Some(r) = &mut s.replay {
                        r.position = at;
                    }
                });
            }
            c = commands.recv() => match c {
                Some(Control::Replay(command)) => replay.command(command),
                Some(Control::Stop) | None => break,
            },
        }
    }
    replay.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes what arrives on `events` until the hub lets go of the sender. Blocking.
fn write_recording(
    path: &std::path::Path,
    events: std_mpsc::Receiver<Arc<Event>>,
    status: &Mutex<RecorderStatus>,
) -> Result<(), String> {
    let mut recorder = Recorder::create(path, false).map_err(|e| e.to_string())?;
    loop {
        let wait = recorder
            .flush_deadline()
            .map_or(Duration::from_millis(500), |d| {
                d.saturating_duration_since(Instant::now())
            });
        match events.recv_timeout(wait) {
            Ok(e) => {
                recorder.push(&e).map_err(|e| e.to_string())?;
                if let Ok(mut s) = status.lock() {
                    s.events += 1;
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        }
        recorder
            .flush_due(Instant::now())
            .map_err(|e| e.to_string())?;
    }
    recorder.finish().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Mesh;
    use crate::mesh::testing::{S, request};
    use crate::tap::Direction;

    const T0: i64 = 1_764_000_000 * S;

    fn hub() -> Hub {
        Hub::new(Arc::new(|| {})).unwrap()
    }

    /// Drains into `mesh` until `done` holds for the source's status, or 20 s pass.
    fn until(hub: &mut Hub, mesh: &mut Mesh, done: impl Fn(&Status, &Mesh) -> bool) -> Status {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(m) = hub.try_recv() {
                match m {
                    Message::Event(e) => mesh.apply(&e),
                    Message::Metrics(d) => mesh.apply_metrics(&d),
                }
            }
            let status = hub.statuses().remove(0);
            if done(&status, mesh) {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out: {status:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn write_recording(path: &std::path::Path, requests: u64) {
        let mut r = Recorder::create(path, false).unwrap();
        for i in 0..requests {
            for e in request(
                Direction::Inbound,
                i,
                T0 + i as i64 * 1000,
                "web",
                "orders",
                200,
                None,
            ) {
                r.push(&e).unwrap();
            }
        }
        r.finish().unwrap();
    }

    #[test]
    fn a_recording_replays_into_the_model_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.tap");
        write_recording(&path, 50);
        let mut hub = hub();
        let id = hub
            .execute(Command::Start {
                spec: Spec::Recording { path },
                replace: false,
            })
            .unwrap();
        let mut mesh = Mesh::default();
        let s = until(&mut hub, &mut mesh, |s, _| s.events == 150);
        assert_eq!(s.state, State::Connected);
        let replay = s.replay.unwrap();
        assert_eq!(replay.span, Some((T0, T0 + 49_000 + 2_000)));
        assert_eq!(mesh.graph().edges().count(), 1);
        hub.execute(Command::Stop(id));
        until(&mut hub, &mut mesh, |s, _| s.state == State::Stopped);
    }

    #[test]
    fn a_missing_recording_fails_in_words() {
        let mut hub = hub();
        hub.execute(Command::Start {
            spec: Spec::Recording {
                path: "/no/such/shop.tap".into(),
            },
            replace: false,
        });
        let s = until(&mut hub, &mut Mesh::default(), |s, _| {
            s.state == State::Failed
        });
        let error = s.error.unwrap();
        assert!(error.contains("/no/such/shop.tap"), "{error}");
    }

    #[test]
    fn replace_removes_the_others_and_discards_what_they_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tap");
        write_recording(&path, 20);
        let mut hub = hub();
        hub.execute(Command::Start {
            spec: Spec::Recording { path: path.clone() },
            replace: false,
        });
        until(&mut hub, &mut Mesh::default(), |s, _| {
            s.state == State::Connected
        });
        std::thread::sleep(Duration::from_millis(100));
        hub.execute(Command::Start {
            spec: Spec::Recording { path },
            replace: true,
        });
        let mut mesh = Mesh::default();
        let s = until(&mut hub, &mut mesh, |s, _| s.events == 60);
        assert_eq!(hub.statuses().len(), 1);
        assert_eq!(s.id, SourceId(2));
        assert_eq!(mesh.log().len(), 60, "only the new source's events");
    }

    #[test]
    fn a_metrics_file_applies_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.txt");
        std::fs::write(
            &path,
            "response_total{direction=\"inbound\",tls=\"true\",client_id=\"web.shop.serviceaccount.identity.linkerd.cluster.local\",classification=\"success\"} 10\n",
        )
        .unwrap();
        let mut hub = hub();
        hub.execute(Command::Start {
            spec: Spec::Metrics {
                feed: MetricsFeed::Targets(vec![format!("shop/orders={}", path.display())]),
                every_ms: 50,
            },
            replace: false,
        });
        let mut mesh = Mesh::default();
        let s = until(&mut hub, &mut mesh, |_, m| m.graph().edges().count() == 1);
        assert_eq!(s.state, State::Connected);
        std::fs::remove_file(&path).unwrap();
        let s = until(&mut hub, &mut mesh, |s, _| s.state == State::Reconnecting);
        assert!(s.error.unwrap().contains("orders.txt"));
    }

    #[test]
    fn the_live_stream_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("in.tap");
        let copy = dir.path().join("out.tap");
        write_recording(&source, 10);
        let mut hub = hub();
        hub.execute(Command::Record(copy.clone()));
        hub.execute(Command::Start {
            spec: Spec::Recording { path: source },
            replace: false,
        });
        let mut mesh = Mesh::default();
        until(&mut hub, &mut mesh, |s, _| s.events == 30);
        let deadline = Instant::now() + Duration::from_secs(20);
        while hub.recorder().unwrap().events < 30 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        hub.execute(Command::StopRecording);
        while hub.recorder().unwrap().active {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(Recording::open(&copy).unwrap().events(), 30);
    }
}
