//! What a room has for one connection: the messages queued for it and, once it is to
//! be closed, why.
//!
//! One small allocation per connection, where a tokio channel for the messages and a
//! watch channel for the reason took about 1 KiB between them before the first
//! message; the queue's storage grows with a burst and is given back once it is
//! drained.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A message queued for a connection; encoded once, shared by every recipient. One
/// pointer, not a `Bytes` (four words), so a queue's storage is a quarter the size.
pub type Outgoing = Arc<axum::body::Bytes>;

/// Why the server closes a connection; sent in the WebSocket close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: String,
}

impl CloseReason {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        CloseReason {
            code,
            reason: reason.into(),
        }
    }
}

/// Queue storage kept once drained, in messages; more is given back.
const KEPT: usize = 16;

/// The room's side: queues messages and closes. Dropping it closes the mailbox too,
/// without a reason.
pub struct Sender(Arc<Mailbox>);

/// The connection's side: takes what the room queued.
pub struct Receiver(Arc<Mailbox>);

/// What a connection is to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Send this.
    Message(Outgoing),
    /// Everything queued has been taken, and the room has let the connection go:
    /// close it, with the reason if there is one.
    Closed(Option<CloseReason>),
}

struct Mailbox {
    mail: Mutex<Mail>,
    ready: Notify,
}

struct Mail {
    queue: VecDeque<Outgoing>,
    capacity: usize,
    /// Set once the room lets go; the inner reason, if it gave one.
    closed: Option<Option<CloseReason>>,
}

/// A mailbox holding at most `capacity` messages.
pub fn mailbox(capacity: usize) -> (Sender, Receiver) {
    let mailbox = Arc::new(Mailbox {
        mail: Mutex::new(Mail {
            queue: VecDeque::new(),
            capacity,
            closed: None,
        }),
        ready: Notify::new(),
    });
    (Sender(mailbox.clone()), Receiver(mailbox))
}

impl Mailbox {
    fn mail(&self) -> MutexGuard<'_, Mail> {
        // Nothing panics while holding the lock; if something did, the queue is
        // still whole.
        self.mail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes with `reason` unless already closed; the first reason stands.
    fn close(&self, reason: Option<CloseReason>) {
        let mut mail = self.mail();
        if mail.closed.is_none() {
            mail.closed = Some(reason);
            drop(mail);
            self.ready.notify_one();
        }
    }
}

impl Mail {
    /// Takes the first message, giving back storage a burst grew once drained.
    fn take(&mut self) -> Option<Outgoing> {
        let message = self.queue.pop_front();
        if self.queue.is_empty() && self.queue.capacity() > KEPT {
            self.queue = VecDeque::new();
        }
        message
    }
}

impl Sender {
    /// Queues `message`. False if the mailbox is closed, or full: a connection that
    /// cannot keep up is closed rather than silently missing a message.
    pub fn post(&self, message: Outgoing) -> bool {
        let mut mail = self.0.mail();
        if mail.closed.is_some() {
            return false;
        }
        if mail.queue.len() >= mail.capacity {
            mail.closed = Some(Some(CloseReason::new(
                1013,
                "your connection could not keep up; reconnecting will catch up",
            )));
        } else {
            mail.queue.push_back(message);
        }
        let posted = mail.closed.is_none();
        drop(mail);
        self.0.ready.notify_one();
        posted
    }

    /// Closes the connection once what is queued has been sent; nothing more is
    /// queued after this. The first reason given stands.
    pub fn close(&self, reason: CloseReason) {
        self.0.close(Some(reason));
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.close(None);
    }
}

impl Receiver {
    /// The next message queued, if there is one.
    pub fn try_take(&self) -> Option<Outgoing> {
        self.0.mail().take()
    }

    /// Waits for the next message, or for the room to let go once every message has
    /// been taken. Cancel-safe: nothing is taken unless it is returned.
    pub async fn next(&self) -> Delivery {
        loop {
            {
                let mut mail = self.0.mail();
                if let Some(message) = mail.take() {
                    return Delivery::Message(message);
                }
                if let Some(reason) = &mail.closed {
                    return Delivery::Closed(reason.clone());
                }
            }
            // A notification given while nobody waits is kept for the next wait, so
            // one that comes between the check above and this is not lost.
            self.0.ready.notified().await;
        }
    }

    /// Whether the room has let go (`Some`), and the reason it gave.
    pub fn closed(&self) -> Option<Option<CloseReason>> {
        self.0.mail().closed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn message(n: u8) -> Outgoing {
        Arc::new(Bytes::from(vec![n]))
    }

    #[tokio::test]
    async fn messages_come_in_order_then_the_close_with_its_first_reason() {
        let (sender, receiver) = mailbox(8);
        assert!(sender.post(message(1)));
        assert!(sender.post(message(2)));
        sender.close(CloseReason::new(4401, "first"));
        sender.close(CloseReason::new(1000, "second"));
        assert!(
            !sender.post(message(3)),
            "nothing is queued after the close"
        );
        assert_eq!(receiver.next().await, Delivery::Message(message(1)));
        assert_eq!(receiver.next().await, Delivery::Message(message(2)));
        assert_eq!(
            receiver.next().await,
            Delivery::Closed(Some(CloseReason::new(4401, "first")))
        );
    }

    #[tokio::test]
    async fn a_full_mailbox_closes_and_keeps_what_it_holds() {
        let (sender, receiver) = mailbox(2);
        assert!(sender.post(message(1)));
        assert!(sender.post(message(2)));
        assert!(!sender.post(message(3)));
        assert_eq!(receiver.try_take(), Some(message(1)));
        assert_eq!(receiver.try_take(), Some(message(2)));
        assert_eq!(receiver.try_take(), None);
        let Some(Some(reason)) = receiver.closed() else {
            panic!("the mailbox is closed with a reason");
        };
        assert_eq!(reason.code, 1013);
    }

    #[tokio::test]
    async fn dropping_the_sender_closes_without_a_reason() {
        let (sender, receiver) = mailbox(2);
        assert!(sender.post(message(1)));
        drop(sender);
        assert_eq!(receiver.next().await, Delivery::Message(message(1)));
        assert_eq!(receiver.next().await, Delivery::Closed(None));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_message_from_another_task() {
        let (sender, receiver) = mailbox(2);
        let waiting = tokio::spawn(async move { receiver.next().await });
        tokio::task::yield_now().await;
        assert!(sender.post(message(7)));
        let delivered = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the receiver wakes")
            .unwrap();
        assert_eq!(delivered, Delivery::Message(message(7)));
    }

    #[test]
    fn storage_grown_by_a_burst_is_given_back_once_drained() {
        let (sender, receiver) = mailbox(512);
        for n in 0..200 {
            assert!(sender.post(message(n as u8)));
        }
        while receiver.try_take().is_some() {}
        assert!(receiver.0.mail().queue.capacity() <= KEPT);
    }
}
