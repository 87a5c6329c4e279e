//! A connection's socket with its writes gathered until a flush, in a buffer that is
//! given back once flushed, so that an idle connection holds no write buffer.
//!
//! tungstenite is set to hand every frame on at once (its own write buffer then only
//! ever holds one frame, and frames are at most `Limits::frame_bytes`); the frames of
//! a burst meet here and go to the socket in one write when the connection flushes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before they are written out without waiting for a flush.
const GATHER_AT_MOST: usize = 16 * 1024;

pub struct Gathered<S> {
    io: S,
    gathered: Vec<u8>,
    /// How much of `gathered` is already written.
    written: usize,
    /// How many bytes have been read, for telling a message that is still arriving.
    read: Arc<AtomicU64>,
}

impl<S> Gathered<S> {
    pub fn new(io: S) -> Gathered<S> {
        Gathered {
            io,
            gathered: Vec::new(),
            written: 0,
            read: Arc::default(),
        }
    }

    /// A count of the bytes read so far, shared with whoever wants it.
    pub fn read_count(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.read)
    }
}

impl<S: AsyncWrite + Unpin> Gathered<S> {
    /// Writes out everything gathered, then gives the buffer back.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.gathered.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.gathered[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.gathered = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gathered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        this.read.fetch_add(read as u64, Ordering::Relaxed);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gathered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.gathered.len() >= GATHER_AT_MOST {
            ready!(this.poll_write_out(cx))?;
        }
        this.gathered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_reach_the_other_end_only_once_flushed_and_the_buffer_is_given_back() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut socket = Gathered::new(near);
        socket.write_all(b"one ").await.unwrap();
        socket.write_all(b"two").await.unwrap();
        let mut nothing = [0u8; 8];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(50), far.read(&mut nothing))
                .await;
        assert!(early.is_err(), "nothing is written before the flush");
        socket.flush().await.unwrap();
        let mut got = [0u8; 7];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one two");
        assert_eq!(socket.gathered.capacity(), 0);
    }

    #[tokio::test]
    async fn a_burst_larger_than_the_socket_takes_goes_out_whole_as_the_far_end_reads() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut socket = Gathered::new(near);
        let burst: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        for chunk in burst.chunks(700) {
            socket.write_all(chunk).await.unwrap();
        }
        socket.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), burst);
    }
}
