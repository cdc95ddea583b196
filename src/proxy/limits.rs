//! Bounds at the front door that no single request sets: how many connections one client
//! address may hold, and how long a client may leave an answer unread.
//!
//! Invariants: a connection holds its address's slot from accept until its socket is closed
//! (a tunnel, a WebSocket, included); one over `max_connections_per_ip` is closed at once,
//! before a byte is read. A write to a client that makes no progress for
//! `client_write_timeout` fails, so the connection ends and whatever it held (the app's
//! activity, the app's connection) is let go.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;

/// Open client connections per address.
pub(super) struct Peers {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection's place in its address's count; given back when dropped.
pub(super) struct Slot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    pub(super) fn new(max: u32) -> Arc<Peers> {
        Arc::new(Peers {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`; `None` when it holds `max` already.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            peers: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Tracks one writer's stall: a write that stays pending longer than the timeout fails.
pub(super) struct WriteDeadline {
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    pub(super) fn new(timeout: Duration) -> WriteDeadline {
        WriteDeadline {
            timeout,
            stalled: None,
        }
    }

    /// Pass a write's outcome through: progress resets the clock; pending arms it, and once it
    /// has run out the write fails with `TimedOut`.
    pub(super) fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if outcome.is_ready() {
            self.stalled = None;
            return outcome;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s (client_write_timeout)",
                    timeout.as_secs()
                ),
            )));
        }
        Poll::Pending
    }
}

/// `write_all` to a client, failing when it takes longer than `timeout` (the fast path writes
/// at most a head and one body chunk at a time).
pub(super) async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    match tokio::time::timeout(timeout, w.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client stopped reading",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_slots_and_gets_them_back() {
        let peers = Peers::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let s1 = peers.admit(a).unwrap();
        let s2 = peers.admit(a).unwrap();
        assert!(peers.admit(a).is_none(), "a third from the same address");
        let other = peers.admit(b);
        assert!(other.is_some(), "another address is not held up");
        drop(s1);
        assert_eq!(peers.open(a), 1);
        let s3 = peers.admit(a).unwrap();
        drop((s2, s3, other));
        assert_eq!(peers.open(a), 0);
        assert!(peers.open.lock().unwrap().is_empty(), "no address is kept");
    }

    /// A writer that is never ready.
    struct Stuck;
    impl AsyncWrite for Stuck {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_after_the_timeout() {
        let mut deadline = WriteDeadline::new(Duration::from_secs(3));
        let t0 = tokio::time::Instant::now();
        let r = std::future::poll_fn(|cx| {
            let outcome = Pin::new(&mut Stuck).poll_write(cx, b"x");
            deadline.check(cx, outcome)
        })
        .await;
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
        let e = write_all(&mut Stuck, b"x", Duration::from_secs(2)).await;
        assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }
}
