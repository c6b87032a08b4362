//! A connection that counts its bytes into `tcp_read_bytes_total`/`tcp_write_bytes_total`
//! as they move, and opens and closes its `tcp_open_connections` slot with its life.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::metrics::TcpSeries;

pub struct Counted<IO> {
    inner: IO,
    series: Arc<TcpSeries>,
    /// The first I/O error, reported as the close's `errno`.
    errno: Option<&'static str>,
}

impl<IO> Counted<IO> {
    pub fn new(inner: IO, series: Arc<TcpSeries>) -> Counted<IO> {
        series.open();
        Counted {
            inner,
            series,
            errno: None,
        }
    }

    fn note(&mut self, e: &io::Error) {
        if self.errno.is_none() {
            self.errno = Some(errno_name(e));
        }
    }
}

impl<IO> Drop for Counted<IO> {
    fn drop(&mut self) {
        self.series.close(self.errno);
    }
}

/// The errno name Linkerd labels closes with, for the errors connections end with.
fn errno_name(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "ECONNRESET",
        io::ErrorKind::ConnectionAborted => "ECONNABORTED",
        io::ErrorKind::BrokenPipe => "EPIPE",
        io::ErrorKind::TimedOut => "ETIMEDOUT",
        io::ErrorKind::ConnectionRefused => "ECONNREFUSED",
        _ => "EIO",
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    self.series.read(n as u64);
                }
            }
            Poll::Ready(Err(e)) => self.note(e),
            Poll::Pending => {}
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &r {
            Poll::Ready(Ok(n)) => self.series.write(*n as u64),
            Poll::Ready(Err(e)) => self.note(e),
            Poll::Pending => {}
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        match &r {
            Poll::Ready(Ok(n)) => self.series.write(*n as u64),
            Poll::Ready(Err(e)) => self.note(e),
            Poll::Pending => {}
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
