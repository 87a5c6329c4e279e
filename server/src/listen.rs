//! Accepting connections, with bounds that keep one address from crowding out
//! everyone else: how many connections an address may hold open at once, how many
//! the server holds in all, and how long a request's head may take to arrive (a
//! client that sends it a byte at a time, or opens a connection and sends nothing,
//! is closed when that time is up; an idle keep-alive connection likewise).
//!
//! An address over its share is answered at once with 429 and a sentence, so a
//! person behind a busy shared address knows to try again; the server over its
//! total answers 503. Both are written without reading the request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::sync::Limits;

/// Refusals being written at once; beyond this, refused connections are dropped
/// without a word, so a flood costs the server nothing but the accept.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a refusal may take to write and its request to be drained.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// What one address is counted as: IPv6 hosts are given a /64 each.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Counts open connections by address.
struct Gate {
    per_address: usize,
    total: usize,
    open: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

enum Refusal {
    Address,
    Full,
}

impl Gate {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let key = address_key(ip);
        let mut open = self.open.lock().expect("connection counts");
        if open.total >= self.total {
            return Err(Refusal::Full);
        }
        let held = open.by_address.entry(key).or_default();
        if *held >= self.per_address {
            return Err(Refusal::Address);
        }
        *held += 1;
        open.total += 1;
        Ok(Permit {
            gate: Arc::clone(self),
            key,
        })
    }
}

/// One open connection, counted until it is dropped (for a WebSocket, when the
/// socket closes: the upgraded connection keeps the stream, and so the permit).
struct Permit {
    gate: Arc<Gate>,
    key: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().expect("connection counts");
        open.total -= 1;
        if let Some(held) = open.by_address.get_mut(&self.key) {
            *held -= 1;
            if *held == 0 {
                open.by_address.remove(&self.key);
            }
        }
    }
}

/// A counted connection's stream.
struct Counted {
    stream: TcpStream,
    _permit: Permit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `stop` is set, then lets open requests
/// finish and returns once every connection has ended.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    door: Arc<crate::door::Door>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let gate = Arc::new(Gate {
        per_address: limits.connections_per_address,
        total: limits.connections,
        open: Mutex::default(),
    });
    let head_timeout = limits.request_head_timeout;
    let refusing = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    // Every connection's task holds a receiver: when all are gone, all have ended.
    let (ended_tx, ended_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: the connections open now
                    // go on; new ones wait a moment.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // Relayed edits are small frames that must leave at once: without
        // TCP_NODELAY, Nagle's algorithm holds them back until the previous one is
        // acknowledged.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        match gate.admit(peer.ip()) {
            Ok(permit) => {
                tracing::trace!(address = %peer, "connection accepted");
                let io = Counted {
                    stream,
                    _permit: permit,
                };
                let router = router.clone();
                let stop = stop.clone();
                let ended = ended_rx.clone();
                tokio::spawn(async move {
                    let service = WithPeer { router, peer };
                    serve_connection(io, service, head_timeout, stop).await;
                    drop(ended);
                });
            }
            Err(refusal) => {
                door.tally.note(
                    match refusal {
                        Refusal::Address => crate::door::tally::Refused::ConnectionsFromOneAddress,
                        Refusal::Full => crate::door::tally::Refused::ServerFull,
                    },
                    Some(address_key(peer.ip())),
                );
                if let Ok(slot) = Arc::clone(&refusing).try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream, peer, refusal).await;
                        drop(slot);
                    });
                }
            }
        }
    }
    drop(listener);
    drop(ended_rx);
    ended_tx.closed().await;
    Ok(())
}

/// The router, with the address each request's connection came from
/// ([`crate::door::PeerAddress`]) in its extensions.
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
}

impl tower_service::Service<hyper::Request<hyper::body::Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<hyper::Request<hyper::body::Incoming>>::poll_ready(
            &mut self.router,
            cx,
        )
    }

    fn call(&mut self, mut request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        request
            .extensions_mut()
            .insert(crate::door::PeerAddress(self.peer));
        tower_service::Service::call(&mut self.router, request)
    }
}

async fn serve_connection(
    io: Counted,
    service: WithPeer,
    head_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let stopping = stopped(&mut stop);
    tokio::pin!(stopping);
    let mut told = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = &mut stopping, if !told => {
                told = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the server is told to stop (or can no longer be told).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Answers a connection the server will not take, and closes it.
async fn refuse(mut stream: TcpStream, peer: SocketAddr, refusal: Refusal) {
    let (status, sentence) = match refusal {
        Refusal::Address => (
            "429 Too Many Requests",
            "too many connections from your address: please close some and try again in a moment",
        ),
        Refusal::Full => (
            "503 Service Unavailable",
            "the server is full just now: please try again in a moment",
        ),
    };
    tracing::trace!(address = %peer.ip(), status, "connection refused");
    let body = serde_json::json!({ "error": sentence }).to_string();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 5\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, so that closing does not reset the connection
        // before it has read the answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn an_address_gets_its_share_and_the_server_its_total() {
        let gate = Arc::new(Gate {
            per_address: 2,
            total: 3,
            open: Mutex::default(),
        });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let a = gate.admit(one).ok().unwrap();
        let _b = gate.admit(one).ok().unwrap();
        assert!(matches!(gate.admit(one), Err(Refusal::Address)));
        let _c = gate.admit(two).ok().unwrap();
        assert!(matches!(gate.admit(two), Err(Refusal::Full)));
        drop(a);
        let _d = gate.admit(one).ok().unwrap();
        assert_eq!(gate.open.lock().unwrap().total, 3);
    }
}
