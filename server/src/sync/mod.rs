//! Live sync: one room per conference document, speaking the Yjs sync and awareness
//! protocols over WebSocket.
//!
//! - [`upgrade`]: the WebSocket opening handshake.
//! - [`socket`]: one connection's loop: reading frames, writing what its mailbox holds,
//!   pings, the message rate, closing with a reason.
//! - [`gathered`]: the write buffer a connection borrows while it flushes.
//! - [`mailbox`]: what a room has for one connection, and why it closes.
//! - [`room`]: a conference document in memory with its connections; the path of a
//!   client's update (the gate, storing, relaying, confirming) and of the server's own.
//! - [`presence`]: who is here, with the identity the server knows.
//! - [`rooms`]: the registry that loads rooms on first use and unloads them.
//! - [`cluster`]: this node among others sharing a PostgreSQL database: leases,
//!   wake-ups, polling; `follower.rs`: a room on a node that does not own its
//!   document.

pub mod allowance;
pub mod cluster;
mod follower;
pub mod gathered;
pub mod mailbox;
pub mod peer;
pub mod presence;
pub mod room;
pub mod rooms;
pub mod socket;
pub mod upgrade;

use std::time::Duration;

pub use gathered::ArrivingBudget;

/// Bounds on what connections and documents may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest WebSocket message accepted, in bytes.
    pub max_message_bytes: usize,
    /// The bytes of messages still arriving that the server holds, on every
    /// connection together (beyond [`ArrivingBudget::FREE_PER_CONNECTION`] each): a
    /// connection whose message would take more is closed. Clones share it.
    pub arriving: ArrivingBudget,
    /// Largest document (snapshot plus log since), in bytes.
    pub max_document_bytes: usize,
    /// The most one participant's updates to one document may take, in bytes, so that
    /// nobody can fill a conference's document alone. Deleting is always allowed.
    pub max_participant_bytes: usize,
    /// Messages queued for one connection before it is dropped as too slow.
    pub outgoing_queue: usize,
    /// Presence entries one connection may hold.
    pub awareness_clients_per_connection: usize,
    /// The largest presence message accepted, in bytes (a state carries a name, a
    /// role and what is being edited: a few hundred bytes).
    pub max_presence_bytes: usize,
    /// Presence bytes one connection may send per second, on average…
    pub presence_bytes_per_second: u32,
    /// …and at once.
    pub presence_burst_bytes: u32,
    /// How long a presence state lasts without being renewed (y-protocols clients
    /// renew theirs every 15 s, and drop others' after 30 s).
    pub presence_timeout: Duration,
    /// How often the server pings; a connection that leaves three unanswered is closed.
    pub ping_interval: Duration,
    /// How long one frame may take to send before the connection is dropped.
    pub send_timeout: Duration,
    /// Updates in the log after which the document is compacted into a snapshot.
    pub compact_every: usize,
    /// How much one read from a connection's socket takes at most (and the read
    /// buffer each connection keeps). Larger messages are read in several steps.
    pub read_buffer_bytes: usize,
    /// The largest message written through tungstenite, which keeps a buffer the size
    /// of the largest frame it has written for the life of the connection: a larger
    /// message goes past it, as one frame written from where it was encoded.
    pub frame_bytes: usize,
    /// Connections one address (an IPv4 address, or an IPv6 /64) may hold open.
    pub connections_per_address: usize,
    /// Connections the server holds open in all.
    pub connections: usize,
    /// How long a request's head (its first line and headers) may take to arrive,
    /// counted from when the server starts waiting for it; also how long an idle
    /// keep-alive connection is kept.
    pub request_head_timeout: Duration,
    /// How long the server gives a request, its body included (a WebSocket or an
    /// event stream counts only until it starts).
    pub request_timeout: Duration,
    /// Messages a WebSocket connection may send per second, on average…
    pub messages_per_second: u32,
    /// …and at once, after a quiet spell (a reconnecting client sends a few at once).
    pub message_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1024 * 1024,
            // Eight messages of the largest size arriving at once, from anyone (or 80
            // of 100 KiB): edits are far smaller, and a client sends a large message
            // only to catch up after long offline work. The memory this holds at
            // worst is about twice the budget: tungstenite reserves room for a whole
            // frame as soon as its head is read, so what the connections closed over
            // the budget had read stays with the allocator while the others fill
            // their own buffers.
            arriving: ArrivingBudget::new(8 * 1024 * 1024),
            max_document_bytes: 32 * 1024 * 1024,
            max_participant_bytes: 8 * 1024 * 1024,
            outgoing_queue: 512,
            awareness_clients_per_connection: 4,
            max_presence_bytes: 8 * 1024,
            presence_bytes_per_second: 16 * 1024,
            presence_burst_bytes: 64 * 1024,
            presence_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            send_timeout: Duration::from_secs(10),
            compact_every: 500,
            // Edits are tens to hundreds of bytes. tungstenite zero-fills the free
            // part of this buffer before every read, and keeps it for the life of the
            // connection: its default of 128 KiB cost a third of the CPU and most of
            // the memory of a connection. Each KiB here is 20 KiB a conference of 20.
            read_buffer_bytes: 128,
            frame_bytes: 256,
            // A browser holds a handful (the two documents, the scale stream, a few
            // requests), and an office or a meeting room's Wi-Fi shares one address.
            // Behind a reverse proxy every connection comes from the proxy: raise it
            // there, and let the proxy limit each client.
            connections_per_address: 512,
            connections: 8192,
            request_head_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            // Fast typing with a cursor moving is 20 to 40 a second.
            messages_per_second: 200,
            message_burst: 1000,
        }
    }
}
