//! A connection's socket with its writes gathered until a flush, in a buffer that is
//! given back once flushed, so that an idle connection holds no write buffer.
//!
//! tungstenite is set to hand every frame on at once (its own write buffer then only
//! ever holds one frame, and the frames it is given are at most `Limits::frame_bytes`);
//! the frames of a burst meet here and go to the socket in one write when the
//! connection flushes.
//!
//! A larger message goes past tungstenite, as one whole frame ([`Passed`]): tungstenite
//! keeps its write buffer at the size of the largest frame it ever wrote, for the life
//! of the connection, while here the message's own bytes are written from where the
//! room encoded them, and nothing is kept once they are out. (Sent as a run of small
//! frames instead, a document of a few MiB is more fragments than some clients take:
//! Node's `ws` closes a socket after 16,384.)

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use axum::body::Bytes;
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
    /// Whole frames passed past tungstenite, to go out after what it wrote before.
    passed: Passed,
    /// What is to be written before `gathered`: earlier gathered bytes, then passed
    /// frames, in order.
    ahead: VecDeque<Bytes>,
}

/// Whole frames for the socket that do not go through tungstenite. Push one only when
/// tungstenite has written out everything it was given (after a flush of the sink).
#[derive(Clone, Default)]
pub struct Passed(Arc<Mutex<Vec<Bytes>>>);

impl Passed {
    /// Queues `message` as one final binary frame (a server's, so not masked).
    pub fn binary(&self, message: &Bytes) {
        let len = message.len();
        let mut head = vec![0x82];
        if len < 126 {
            head.push(len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            head.push(126);
            head.extend(len.to_be_bytes());
        } else {
            head.push(127);
            head.extend((len as u64).to_be_bytes());
        }
        let mut passed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        passed.push(Bytes::from(head));
        passed.push(Bytes::clone(message));
    }

    fn take(&self) -> Vec<Bytes> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<S> Gathered<S> {
    pub fn new(io: S) -> Gathered<S> {
        Gathered {
            io,
            gathered: Vec::new(),
            written: 0,
            read: Arc::default(),
            passed: Passed::default(),
            ahead: VecDeque::new(),
        }
    }

    /// Where to pass whole frames past tungstenite.
    pub fn passed(&self) -> Passed {
        self.passed.clone()
    }

    /// Puts frames passed since the last write after what was gathered before them.
    fn take_passed(&mut self) {
        let passed = self.passed.take();
        if passed.is_empty() {
            return;
        }
        let gathered = std::mem::take(&mut self.gathered);
        if self.written < gathered.len() {
            self.ahead
                .push_back(Bytes::from(gathered).slice(self.written..));
        }
        self.written = 0;
        self.ahead.extend(passed);
    }

    /// A count of the bytes read so far, shared with whoever wants it.
    pub fn read_count(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.read)
    }
}

impl<S: AsyncWrite + Unpin> Gathered<S> {
    /// Writes out everything gathered, then gives the buffer back.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(front) = self.ahead.front_mut() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, front))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n == front.len() {
                self.ahead.pop_front();
            } else {
                let _ = front.split_to(n);
            }
        }
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
        this.take_passed();
        if this.gathered.len() >= GATHER_AT_MOST || !this.ahead.is_empty() {
            ready!(this.poll_write_out(cx))?;
        }
        this.gathered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.take_passed();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.take_passed();
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

    #[tokio::test]
    async fn a_frame_passed_by_goes_out_whole_between_what_came_before_and_after() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut socket = Gathered::new(near);
        let passed = socket.passed();
        let large = Bytes::from(vec![7u8; 70_000]);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        socket.write_all(b"before").await.unwrap();
        passed.binary(&large);
        socket.write_all(b"after").await.unwrap();
        socket.shutdown().await.unwrap();
        let mut expected = b"before".to_vec();
        // One final binary frame, its length in the 8-byte form.
        expected.extend([0x82, 127]);
        expected.extend(70_000u64.to_be_bytes());
        expected.extend(vec![7u8; 70_000]);
        expected.extend(b"after");
        assert_eq!(reader.await.unwrap(), expected);
        assert!(socket.ahead.is_empty() && socket.gathered.capacity() == 0);
    }
}
