//! Replaying a recording as an event source: its events go into a channel in file order,
//! paced by their `time_us` at 1×, N× or as fast as the receiver takes them, with seek by
//! time, pause and resume driven by commands (the app's timeline scrubber). A thread reads
//! and decodes blocks a few ahead ([`ReadAhead`]), so a long recording costs a few blocks of
//! memory, and events go out in batches (a whole block when unpaced), not one message each.

use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::tap::batch::Batch;
use crate::tap::read_ahead::ReadAhead;
use crate::tap::recording::{Recording, RecordingError};

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("replay of {path}: the reading task failed: {message}")]
    Task { path: String, message: String },
}

/// How fast recorded time passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// This many recorded seconds per second (1.0 is real time).
    Times(f64),
    /// No pacing: as fast as the receiver takes events.
    Max,
}

impl Speed {
    /// Recorded seconds per second; `None` for no pacing (also for a factor that is not a
    /// positive number, which cannot pace anything).
    fn factor(self) -> Option<f64> {
        match self {
            Speed::Times(x) if x.is_finite() && x > 0.0 => Some(x),
            _ => None,
        }
    }
}

/// What the replay is told while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    /// Go on from the first event (in file order) at or after this time (Unix µs).
    Seek(i64),
    Pause,
    Resume,
    Speed(Speed),
    Stop,
}

/// How a replay starts and ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub speed: Speed,
    /// Start at the first event at or after this time (Unix µs); the beginning when `None`.
    pub from_us: Option<i64>,
    /// At the end of the recording, keep waiting for a seek (a timeline) instead of ending
    /// and closing the channel (a command that plays a file once).
    pub hold_at_end: bool,
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sent: u64,
    /// The recording ran out (rather than being stopped or its receiver going away).
    pub finished: bool,
}

/// A running replay. Dropping it stops the replay.
pub struct Replay {
    commands: mpsc::UnboundedSender<Command>,
    position: watch::Receiver<Option<i64>>,
    task: JoinHandle<Result<Summary, ReplayError>>,
    path: String,
}

impl Replay {
    /// Starts replaying `recording` into `events`, a block or a run of due events per
    /// message. Must be called within a tokio runtime.
    pub fn start(recording: Recording, options: Options, events: mpsc::Sender<Batch>) -> Replay {
        let (commands, rx) = mpsc::unbounded_channel();
        let (position_tx, position) = watch::channel(None);
        let path = recording.path().display().to_string();
        let run = Run {
            path: path.clone(),
            recording: Some(recording),
            ahead: None,
            commands: rx,
            events,
            position: position_tx,
            clock: Clock::new(options.speed),
            hold_at_end: options.hold_at_end,
            sent: 0,
        };
        let task = tokio::spawn(run.run(options.from_us));
        Replay {
            commands,
            position,
            task,
            path,
        }
    }

    /// Sends a command; ignored once the replay has ended.
    pub fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The time of the last event sent: where a timeline shows the replay.
    pub fn position(&self) -> watch::Receiver<Option<i64>> {
        self.position.clone()
    }

    /// Waits for the replay to end by itself: the recording ran out (never, with
    /// `hold_at_end`) or the receiver went away.
    pub async fn wait(self) -> Result<Summary, ReplayError> {
        let Replay {
            commands,
            task,
            path,
            ..
        } = self;
        let result = joined(task, path).await;
        drop(commands);
        result
    }

    /// Stops the replay and waits for it.
    pub async fn stop(self) -> Result<Summary, ReplayError> {
        self.command(Command::Stop);
        self.wait().await
    }
}

async fn joined(
    task: JoinHandle<Result<Summary, ReplayError>>,
    path: String,
) -> Result<Summary, ReplayError> {
    task.await.map_err(|e| ReplayError::Task {
        path,
        message: e.to_string(),
    })?
}

/// Maps recorded time to wall time: `anchor` says which recorded instant is when.
struct Clock {
    speed: Speed,
    anchor: Option<(Instant, i64)>,
    paused_at: Option<i64>,
    paused: bool,
}

impl Clock {
    fn new(speed: Speed) -> Clock {
        Clock {
            speed,
            anchor: None,
            paused_at: None,
            paused: false,
        }
    }

    /// The recorded time it is now, if the clock is running.
    fn now_us(&self, now: Instant) -> Option<i64> {
        let (wall, t) = self.anchor?;
        let x = self.speed.factor()?;
        let elapsed = now.saturating_duration_since(wall).as_secs_f64() * 1e6 * x;
        Some(t.saturating_add(elapsed as i64))
    }

    /// When the event at `time_us` is due; `None` for right away. The first event after a
    /// start, seek or resume without a position is due at once and anchors the clock.
    fn due(&mut self, time_us: i64, now: Instant) -> Option<Instant> {
        let x = self.speed.factor()?;
        let (wall, t) = *self.anchor.get_or_insert((now, time_us));
        let ahead = time_us.saturating_sub(t).max(0) as f64 / x;
        let at = wall.checked_add(Duration::from_secs_f64((ahead / 1e6).min(1e9)))?;
        (at > now).then_some(at)
    }

    fn pause(&mut self, now: Instant) {
        if !self.paused {
            self.paused = true;
            self.paused_at = self.now_us(now);
        }
    }

    fn resume(&mut self, now: Instant) {
        if self.paused {
            self.paused = false;
            self.anchor = self.paused_at.take().map(|t| (now, t));
        }
    }

    fn set_speed(&mut self, speed: Speed, now: Instant) {
        let t = self.now_us(now);
        self.speed = speed;
        self.anchor = t.map(|t| (now, t));
    }

    fn seek(&mut self) {
        self.anchor = None;
        self.paused_at = None;
    }
}

struct Run {
    path: String,
    /// The recording while no reader has it; `None` only while a reader is being started
    /// or stopped.
    recording: Option<Recording>,
    /// The thread reading blocks ahead, from the last start or seek.
    ahead: Option<ReadAhead>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Batch>,
    position: watch::Sender<Option<i64>>,
    clock: Clock,
    hold_at_end: bool,
    sent: u64,
}

/// A reader that panicked took the recording with it; the replay cannot go on.
fn lost_recording(path: &str) -> ReplayError {
    ReplayError::Task {
        path: path.to_string(),
        message: "the recording was lost when reading a block failed".into(),
    }
}

/// What to do after a command.
enum Next {
    Go,
    SeekTo(i64),
    End,
}

impl Run {
    async fn run(mut self, from_us: Option<i64>) -> Result<Summary, ReplayError> {
        let mut seek = from_us;
        self.read_from(seek).await?;
        loop {
            let next = match &mut self.ahead {
                Some(ahead) => ahead.next().await,
                None => None,
            };
            let Some(batch) = next else {
                self.stop_reading().await?;
                if !self.hold_at_end {
                    return Ok(self.summary(true));
                }
                loop {
                    match self.wait_command().await {
                        Next::SeekTo(t) => {
                            seek = Some(t);
                            self.read_from(seek).await?;
                            break;
                        }
                        Next::Go => {}
                        Next::End => return Ok(self.summary(true)),
                    }
                }
                continue;
            };
            let mut batch = batch?;
            if let Some(t) = seek.take() {
                batch.skip_before(t);
            }
            match self.send(batch).await {
                Next::Go => {}
                Next::SeekTo(t) => {
                    seek = Some(t);
                    self.read_from(seek).await?;
                }
                Next::End => return Ok(self.summary(false)),
            }
        }
    }

    fn summary(&self, finished: bool) -> Summary {
        Summary {
            sent: self.sent,
            finished,
        }
    }

    /// Starts reading afresh: from the beginning, or from the block holding the first event
    /// at or after `seek` (finding it may read the blocks not read yet, on the blocking pool).
    async fn read_from(&mut self, seek: Option<i64>) -> Result<(), ReplayError> {
        self.stop_reading().await?;
        let mut recording = self
            .recording
            .take()
            .ok_or_else(|| lost_recording(&self.path))?;
        if seek.is_some() {
            self.clock.seek();
        }
        let first = match seek {
            None => 0,
            Some(t) => {
                let (back, first) = self
                    .blocking(move || {
                        let first = recording.block_at(t);
                        (recording, first)
                    })
                    .await?;
                recording = back;
                first?.unwrap_or(usize::MAX)
            }
        };
        self.ahead = Some(ReadAhead::start(recording, first)?);
        Ok(())
    }

    /// Stops the reader, if one runs, and takes the recording back.
    async fn stop_reading(&mut self) -> Result<(), ReplayError> {
        if let Some(ahead) = self.ahead.take() {
            self.recording = Some(self.blocking(move || ahead.finish()).await??);
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ReplayError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ReplayError::Task {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// While the replay has nothing to send (ended, or paused): the next command that
    /// matters.
    async fn wait_command(&mut self) -> Next {
        match self.commands.recv().await {
            Some(c) => self.apply(c),
            None => Next::End,
        }
    }

    fn apply(&mut self, command: Command) -> Next {
        let now = Instant::now();
        match command {
            Command::Seek(t) => return Next::SeekTo(t),
            Command::Pause => self.clock.pause(now),
            Command::Resume => self.clock.resume(now),
            Command::Speed(s) => self.clock.set_speed(s, now),
            Command::Stop => return Next::End,
        }
        Next::Go
    }

    /// Sends `batch`'s events as they fall due (and not while paused): at once and whole
    /// when unpaced, else each time in one message with every other event due by then.
    /// Commands that arrive meanwhile are applied.
    async fn send(&mut self, mut batch: Batch) -> Next {
        while let Some(first) = batch.events().first() {
            if self.clock.paused {
                match self.wait_command().await {
                    Next::Go => continue,
                    other => return other,
                }
            }
            if let Some(due) = self.clock.due(first.time_us, Instant::now()) {
                tokio::select! {
                    c = self.commands.recv() => match c.map(|c| self.apply(c)) {
                        Some(Next::Go) => continue,
                        Some(other) => return other,
                        None => return Next::End,
                    },
                    () = tokio::time::sleep_until(due) => {}
                }
            }
            let command = tokio::select! {
                permit = self.events.reserve() => {
                    let Ok(permit) = permit else { return Next::End };
                    let now = Instant::now();
                    let clock = &mut self.clock;
                    let due = batch
                        .events()
                        .iter()
                        .take_while(|e| clock.due(e.time_us, now).is_none())
                        .count()
                        .max(1);
                    let part = if due >= batch.len() {
                        std::mem::take(&mut batch)
                    } else {
                        batch.take_front(due)
                    };
                    let last = part.events().last().map(|e| e.time_us);
                    self.sent += part.len() as u64;
                    permit.send(part);
                    self.position.send_replace(last);
                    continue;
                }
                c = self.commands.recv() => c,
            };
            match command.map(|c| self.apply(c)) {
                Some(Next::Go) => {}
                Some(other) => return other,
                None => return Next::End,
            }
        }
        Next::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::recording::Recorder;
    use crate::tap::{Direction, Endpoint, Event, EventKind, Tls};

    const T0: i64 = 1_767_225_600_000_000;
    const MS: i64 = 1_000;

    fn event(stream: u64, time_us: i64) -> Event {
        Event {
            stream,
            kind: EventKind::TcpOpen,
            time_us,
            proxy: "shop/orders".into(),
            direction: Direction::Inbound,
            source: Endpoint::default(),
            destination: Endpoint::default(),
            tls: Tls::default(),
            http: None,
            tcp: None,
            decision: None,
            avro: Vec::new(),
            lost: 0,
        }
    }

    /// A recording of `n` events `gap_ms` apart, four to a block.
    fn recording(dir: &tempfile::TempDir, n: u64, gap_ms: i64) -> Recording {
        let path = dir.path().join(format!("r{n}-{gap_ms}.avro"));
        let mut r = Recorder::create(&path, true).unwrap();
        for i in 0..n {
            r.push(&event(i, T0 + i as i64 * gap_ms * MS)).unwrap();
            if i % 4 == 3 {
                r.flush().unwrap();
            }
        }
        r.finish().unwrap();
        Recording::open(&path).unwrap()
    }

    fn options(speed: Speed) -> Options {
        Options {
            speed,
            from_us: None,
            hold_at_end: false,
        }
    }

    /// Plays the whole recording; the streams received, and how long it took.
    async fn play(rec: Recording, options: Options) -> (Vec<u64>, Duration, Summary) {
        let (tx, mut rx) = mpsc::channel(4);
        let started = std::time::Instant::now();
        let replay = Replay::start(rec, options, tx);
        let mut got = Vec::new();
        while let Some(batch) = rx.recv().await {
            got.extend(batch.events().iter().map(|e| e.stream));
        }
        let elapsed = started.elapsed();
        (got, elapsed, replay.wait().await.unwrap())
    }

    /// The events received, one at a time, whatever batches they came in.
    struct Received {
        rx: mpsc::Receiver<Batch>,
        queue: std::collections::VecDeque<u64>,
    }

    impl Received {
        fn new(rx: mpsc::Receiver<Batch>) -> Received {
            Received {
                rx,
                queue: Default::default(),
            }
        }

        async fn next(&mut self) -> u64 {
            while self.queue.is_empty() {
                let batch = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                    .await
                    .expect("an event in time")
                    .expect("the replay goes on");
                self.queue.extend(batch.events().iter().map(|e| e.stream));
            }
            self.queue.pop_front().unwrap_or_default()
        }
    }

    #[tokio::test]
    async fn max_speed_sends_everything_in_order_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        // 50 events over 49 minutes of recorded time.
        let (got, elapsed, summary) = play(recording(&dir, 50, 60_000), options(Speed::Max)).await;
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(
            summary,
            Summary {
                sent: 50,
                finished: true
            }
        );
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    }

    #[tokio::test]
    async fn one_x_takes_the_recorded_span_and_four_x_a_quarter() {
        let dir = tempfile::tempdir().unwrap();
        // 11 events 100 ms apart: one second of recorded time.
        let (got, one_x, _) = play(recording(&dir, 11, 100), options(Speed::Times(1.0))).await;
        assert_eq!(got, (0..11).collect::<Vec<_>>());
        assert!(
            one_x >= Duration::from_millis(950) && one_x < Duration::from_secs(4),
            "1x took {one_x:?}"
        );
        let (got, four_x, _) = play(recording(&dir, 11, 100), options(Speed::Times(4.0))).await;
        assert_eq!(got, (0..11).collect::<Vec<_>>());
        assert!(
            four_x >= Duration::from_millis(230) && four_x < Duration::from_millis(800),
            "4x took {four_x:?}"
        );
    }

    #[tokio::test]
    async fn it_starts_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(Speed::Max);
        o.from_us = Some(T0 + 5 * 1_000 * MS + 1);
        let (got, _, _) = play(recording(&dir, 10, 1_000), o).await;
        assert_eq!(got, vec![6, 7, 8, 9]);
        o.from_us = Some(T0 + 60_000 * MS);
        let (got, _, summary) = play(recording(&dir, 10, 1_000), o).await;
        assert!(got.is_empty());
        assert!(summary.finished);
    }

    #[tokio::test]
    async fn pause_holds_events_and_seek_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel(16);
        let mut rx = Received::new(rx);
        let mut o = options(Speed::Times(1.0));
        o.hold_at_end = true;
        let replay = Replay::start(recording(&dir, 6, 200), o, tx);
        assert_eq!(rx.next().await, 0);
        assert!(rx.queue.is_empty(), "at 1x an event comes alone");
        replay.command(Command::Pause);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(rx.rx.try_recv().is_err(), "nothing arrives while paused");
        replay.command(Command::Resume);
        assert_eq!(rx.next().await, 1);
        replay.command(Command::Speed(Speed::Max));
        for stream in 2..6 {
            assert_eq!(rx.next().await, stream);
        }
        assert_eq!(*replay.position().borrow(), Some(T0 + 5 * 200 * MS));
        // Held at the end: a seek back plays the tail again.
        replay.command(Command::Seek(T0 + 3 * 200 * MS));
        for stream in 3..6 {
            assert_eq!(rx.next().await, stream);
        }
        let summary = replay.stop().await.unwrap();
        assert_eq!(
            summary,
            Summary {
                sent: 9,
                finished: true
            }
        );
        assert!(
            rx.rx.recv().await.is_none(),
            "the channel closes when it stops"
        );
    }

    #[tokio::test]
    async fn a_receiver_that_goes_away_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel(1);
        let mut rx = Received::new(rx);
        let replay = Replay::start(recording(&dir, 20, 1), options(Speed::Max), tx);
        assert_eq!(rx.next().await, 0);
        drop(rx);
        let summary = tokio::time::timeout(Duration::from_secs(10), replay.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(!summary.finished && summary.sent < 20, "{summary:?}");
    }
}
