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
//!
//! It also counts what is read, and charges the bytes of a message still arriving
//! against a budget for the whole server ([`ArrivingBudget`]): tungstenite holds such
//! bytes until the message is whole, and a connection may hold up to a message's
//! limit for as long as two pings, so many connections each sending half a message
//! could otherwise hold gigabytes between them.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The error a read gives once its connection's message would take the budget for
/// messages still arriving past its limit.
const OVER_BUDGET: &str = "too many bytes of messages still arriving on the server";

/// Bytes gathered before they are written out without waiting for a flush.
const GATHER_AT_MOST: usize = 16 * 1024;

/// The bytes of messages still arriving, on every connection together, and the most
/// they may come to. Cloning it gives the same budget.
#[derive(Debug, Clone)]
pub struct ArrivingBudget {
    held: Arc<AtomicUsize>,
    max: usize,
}

impl ArrivingBudget {
    /// The bytes of a message still arriving that a connection holds without charge:
    /// edits are far smaller, and presence messages are at most 8 KiB, so a budget
    /// taken by large messages never stops anyone's ordinary work. (With the limits on
    /// connections, that is at most 8 KiB × 512 uncharged from one address.)
    pub const FREE_PER_CONNECTION: usize = 8 * 1024;

    pub fn new(max: usize) -> ArrivingBudget {
        ArrivingBudget {
            held: Arc::default(),
            max,
        }
    }

    /// The bytes charged now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most that may be charged.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Charges `n` more bytes, if they fit.
    fn take(&self, n: usize) -> bool {
        let before = self.held.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.max {
            self.held.fetch_sub(n, Ordering::Relaxed);
            false
        } else {
            true
        }
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

/// What one connection has read, how much of it belongs to a message still arriving,
/// and how much of that is charged to the [`ArrivingBudget`]. Shared between the
/// socket, which reads, and the connection's loop, which sees whole messages.
#[derive(Debug)]
pub struct Arrival {
    budget: ArrivingBudget,
    /// Bytes read in all.
    read: AtomicU64,
    /// How many had been read when the last whole message came (its own bytes only,
    /// for a control frame in the middle of a message).
    whole_at: AtomicU64,
    /// What this connection has charged to the budget.
    charged: AtomicUsize,
    /// Set once a read would have taken the budget past its limit.
    over: AtomicBool,
}

impl Arrival {
    fn new(budget: ArrivingBudget) -> Arrival {
        Arrival {
            budget,
            read: AtomicU64::new(0),
            whole_at: AtomicU64::new(0),
            charged: AtomicUsize::new(0),
            over: AtomicBool::new(false),
        }
    }

    /// Bytes read in all.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Whether more has been read than the messages that came whole.
    pub fn unfinished(&self) -> bool {
        self.read() > self.whole_at.load(Ordering::Relaxed)
    }

    /// A whole message came: everything read so far is accounted for.
    pub fn whole(&self) {
        self.whole_at.store(self.read(), Ordering::Relaxed);
        self.settle();
    }

    /// A control frame of `bytes` came, perhaps in the middle of a message: only its
    /// own bytes are accounted for.
    pub fn control(&self, bytes: u64) {
        self.whole_at.fetch_add(bytes, Ordering::Relaxed);
        self.settle();
    }

    /// Whether the connection was stopped because its message would have taken the
    /// budget past its limit.
    pub fn over_budget(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }

    /// What this connection should have charged now.
    fn owed(&self) -> usize {
        let unfinished = self
            .read()
            .saturating_sub(self.whole_at.load(Ordering::Relaxed));
        usize::try_from(unfinished)
            .unwrap_or(usize::MAX)
            .saturating_sub(ArrivingBudget::FREE_PER_CONNECTION)
    }

    /// Gives back what is charged beyond what is owed.
    fn settle(&self) {
        let owed = self.owed();
        let charged = self.charged.load(Ordering::Relaxed);
        if charged > owed {
            self.charged.store(owed, Ordering::Relaxed);
            self.budget.give_back(charged - owed);
        }
    }

    /// Counts `n` bytes just read, and charges what they add to a message still
    /// arriving. False, and nothing more charged, if that does not fit in the budget.
    fn arrived(&self, n: usize) -> bool {
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        let owed = self.owed();
        let charged = self.charged.load(Ordering::Relaxed);
        if owed <= charged {
            return true;
        }
        if !self.budget.take(owed - charged) {
            self.over.store(true, Ordering::Relaxed);
            return false;
        }
        self.charged.store(owed, Ordering::Relaxed);
        true
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.budget.give_back(*self.charged.get_mut());
    }
}

pub struct Gathered<S> {
    io: S,
    gathered: Vec<u8>,
    /// How much of `gathered` is already written.
    written: usize,
    /// What has been read, for telling a message that is still arriving.
    arrival: Arc<Arrival>,
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
    /// A socket whose messages still arriving are charged to `budget`.
    pub fn new(io: S, budget: ArrivingBudget) -> Gathered<S> {
        Gathered {
            io,
            gathered: Vec::new(),
            written: 0,
            arrival: Arc::new(Arrival::new(budget)),
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

    /// What has been read so far, shared with whoever wants it.
    pub fn arrival(&self) -> Arc<Arrival> {
        Arc::clone(&self.arrival)
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
        if this.arrival.over_budget() {
            return Poll::Ready(Err(io::Error::other(OVER_BUDGET)));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if !this.arrival.arrived(read) {
            return Poll::Ready(Err(io::Error::other(OVER_BUDGET)));
        }
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

    #[test]
    fn a_message_still_arriving_is_charged_beyond_its_free_part_until_it_is_whole() {
        const FREE: usize = ArrivingBudget::FREE_PER_CONNECTION;
        let budget = ArrivingBudget::new(10_000);
        let one = Arrival::new(budget.clone());
        assert!(one.arrived(FREE));
        assert_eq!(budget.held(), 0);
        assert!(one.arrived(6_000));
        assert_eq!(budget.held(), 6_000);
        // A ping in the middle of the message is not part of it.
        one.control(6);
        assert_eq!(budget.held(), 5_994);
        one.whole();
        assert_eq!(budget.held(), 0);
        assert!(!one.unfinished());

        // Two messages at once: the one that would take the budget past its limit
        // stops its connection, and charges nothing.
        assert!(one.arrived(FREE + 6_000));
        let two = Arrival::new(budget.clone());
        assert!(two.arrived(FREE + 3_000));
        assert!(!two.arrived(2_000));
        assert!(two.over_budget() && !one.over_budget());
        assert_eq!(budget.held(), 9_000);
        // Whatever a connection holds is given back when it ends.
        drop(two);
        assert_eq!(budget.held(), 6_000);
        drop(one);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn a_read_past_the_budget_fails_and_so_does_every_read_after_it() {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let budget = ArrivingBudget::new(1_000);
        let mut socket = Gathered::new(near, budget.clone());
        far.write_all(&[1u8; ArrivingBudget::FREE_PER_CONNECTION + 500])
            .await
            .unwrap();
        let mut got = vec![0u8; ArrivingBudget::FREE_PER_CONNECTION + 500];
        socket.read_exact(&mut got).await.unwrap();
        assert_eq!(budget.held(), 500);
        far.write_all(&[1u8; 600]).await.unwrap();
        let mut more = [0u8; 600];
        assert!(socket.read_exact(&mut more).await.is_err());
        assert!(socket.arrival().over_budget());
        assert!(socket.read(&mut more).await.is_err());
        drop(socket);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn writes_reach_the_other_end_only_once_flushed_and_the_buffer_is_given_back() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut socket = Gathered::new(near, ArrivingBudget::new(usize::MAX));
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
        let mut socket = Gathered::new(near, ArrivingBudget::new(usize::MAX));
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
        let mut socket = Gathered::new(near, ArrivingBudget::new(usize::MAX));
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
