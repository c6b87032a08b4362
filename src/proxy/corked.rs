//! A write buffer between an HTTP/2 connection and its transport, emptied once per poll of
//! the connection. The h2 codec flushes its transport before it buffers the frame after any
//! DATA frame of 256 bytes or more, so a connection answering many streams at once wrote one
//! TLS record and made one `writev` per response. While [`Flushing`] polls the connection,
//! [`Corked`] keeps what the codec writes and flushes in memory; when the poll returns, it
//! goes out at once: one batch of TLS records, one system call.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Past this many buffered bytes a write waits for the transport, so a slow peer holds the
/// connection back instead of growing the buffer.
const LIMIT: usize = 64 * 1024;

/// The transport with its write buffer: handed to the HTTP/2 connection.
pub struct Corked<IO> {
    state: Arc<Mutex<State<IO>>>,
}

/// The connection future, emptying the buffer after each of its polls.
pub struct Flushing<IO, F> {
    state: Arc<Mutex<State<IO>>>,
    connection: Pin<Box<F>>,
}

struct State<IO> {
    io: IO,
    buf: Vec<u8>,
    /// Bytes of `buf` already written to `io`.
    written: usize,
    /// Set while the connection is being polled: flushes wait for the end of the poll.
    corked: bool,
    /// A flush was asked for during the poll.
    deferred: bool,
    /// A write error met at the end of a poll, for the connection's next call.
    failed: Option<io::Error>,
}

/// Wraps `io` for the connection that `connect` makes from it.
pub fn corked<IO, F>(io: IO, connect: impl FnOnce(Corked<IO>) -> F) -> Flushing<IO, F> {
    let state = Arc::new(Mutex::new(State {
        io,
        buf: Vec::new(),
        written: 0,
        corked: false,
        deferred: false,
        failed: None,
    }));
    let connection = Box::pin(connect(Corked {
        state: state.clone(),
    }));
    Flushing { state, connection }
}

fn lock<IO>(state: &Mutex<State<IO>>) -> MutexGuard<'_, State<IO>> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl<IO: AsyncWrite + Unpin> State<IO> {
    /// Writes the buffer out; `Pending` until all of it is written.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn take_failure(&mut self) -> io::Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Room for more: waits for the transport once the buffer is past the limit.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.take_failure()?;
        if self.buf.len() - self.written >= LIMIT {
            ready!(self.drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Corked<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut s = lock(&self.state);
        Pin::new(&mut s.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Corked<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut s = lock(&self.state);
        ready!(s.poll_room(cx))?;
        s.buf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut s = lock(&self.state);
        ready!(s.poll_room(cx))?;
        let mut n = 0;
        for b in bufs {
            s.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = lock(&self.state);
        s.take_failure()?;
        if s.corked {
            // `Flushing` writes it out when this poll of the connection ends.
            s.deferred = true;
            return Poll::Ready(Ok(()));
        }
        s.flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = lock(&self.state);
        s.take_failure()?;
        ready!(s.flush(cx))?;
        Pin::new(&mut s.io).poll_shutdown(cx)
    }
}

impl<IO: AsyncWrite + Unpin, F: Future> Future for Flushing<IO, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        lock(&self.state).corked = true;
        let out = self.connection.as_mut().poll(cx);
        let mut s = lock(&self.state);
        s.corked = false;
        if std::mem::take(&mut s.deferred) || s.buf.len() > s.written {
            // Pending: the transport wakes this task when it can take more.
            if let Poll::Ready(Err(e)) = s.flush(cx) {
                s.failed = Some(e);
                drop(s);
                // Let the connection see the failure at once.
                cx.waker().wake_by_ref();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use tokio::io::AsyncWriteExt as _;

    use super::*;

    /// Records every write the transport receives.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        flushes: usize,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A connection that writes and flushes three frames in one poll, then waits.
    struct ThreeFrames(Corked<Recorder>);

    impl Future for ThreeFrames {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            for frame in [&b"one"[..], b"two", b"three"] {
                assert!(Pin::new(&mut self.0).poll_write(cx, frame).is_ready());
                assert!(Pin::new(&mut self.0).poll_flush(cx).is_ready());
            }
            Poll::Pending
        }
    }

    #[test]
    fn writes_once_per_poll_of_the_connection() {
        let mut f = corked(Recorder::default(), ThreeFrames);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        let s = lock(&f.state);
        assert_eq!(s.io.writes, vec![b"onetwothree".to_vec()]);
        assert_eq!(s.io.flushes, 1);
        assert!(s.buf.is_empty());
    }

    #[tokio::test]
    async fn outside_a_poll_of_the_connection_a_flush_writes_through() {
        let f = corked(Recorder::default(), |io| async move { io });
        let state = f.state.clone();
        let mut io = f.await;
        io.write_all(b"hello").await.unwrap();
        assert!(lock(&state).io.writes.is_empty());
        io.flush().await.unwrap();
        assert_eq!(lock(&state).io.writes, vec![b"hello".to_vec()]);
    }
}
