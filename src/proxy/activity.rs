//! Activity and idle stop: what keeps an app awake.
//!
//! Every request through the proxy holds an [`Active`] from the moment it is routed until its
//! answer is fully sent (so a streaming answer, SSE or a long poll counts for as long as it is
//! open) and every upgraded connection (WebSocket) holds one until it closes. Health probes
//! and Hangar's own pages never touch it.
//!
//! Invariants: an app is stopped for idleness only when nothing holds an `Active` for it and
//! the last one ended at least its idle timeout ago; while the stop runs the app's gate is
//! closed, so a request that arrives then waits for the stop to finish and wakes the app
//! again rather than reaching a process that is going away.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;

use super::Proxy;
use crate::run::supervisor::Status;
use crate::store::registry::StartMode;

/// While an idle stop runs, `open` is pushed this far below zero.
const CLOSED: i64 = i64::MIN / 2;

pub(super) fn clock_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One app's activity counter; it outlives route-table reloads.
#[derive(Debug, Default)]
pub struct Activity {
    /// Requests in flight, answers still streaming, open tunnels; below zero while the gate
    /// is closed for an idle stop.
    open: AtomicI64,
    /// `clock_ms()` when the last activity ended (0: none yet).
    last: AtomicU64,
    gate: Notify,
}

/// Held while something is active for an app.
#[derive(Debug)]
pub struct Active(Arc<Activity>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.last.store(clock_ms().max(1), Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::Release);
    }
}

impl Activity {
    /// Count one more activity; waits while an idle stop of the app is under way.
    pub async fn enter(self: &Arc<Self>) -> Active {
        loop {
            let reopened = self.gate.notified();
            if self.open.fetch_add(1, Ordering::Acquire) >= 0 {
                return Active(self.clone());
            }
            self.open.fetch_sub(1, Ordering::Release);
            reopened.await;
        }
    }

    /// `clock_ms()` when the last activity ended (0: none since the engine started).
    pub(super) fn last_ms(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn open(&self) -> i64 {
        self.open.load(Ordering::Acquire).max(0)
    }

    /// How long nothing has been active, counting from `floor` at the latest (the time the
    /// app has been running: an operator start is not a visit, but starts the clock).
    fn idle_for(&self, running_for: Duration) -> Duration {
        let last = self.last.load(Ordering::Relaxed);
        let since_last = if last == 0 {
            running_for
        } else {
            Duration::from_millis(clock_ms().saturating_sub(last))
        };
        since_last.min(running_for)
    }

    /// Close the gate if nothing is active; true if it was closed by this call.
    pub(super) fn try_close(&self) -> bool {
        self.open
            .compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(super) fn reopen(&self) {
        self.open.fetch_sub(CLOSED, Ordering::AcqRel);
        self.last.store(clock_ms().max(1), Ordering::Relaxed);
        self.gate.notify_waiters();
    }
}

/// An answer body that keeps its app active until it is fully sent or dropped.
pub struct Tracked<B> {
    inner: B,
    _active: Active,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, active: Active) -> Self {
        Tracked {
            inner,
            _active: active,
        }
    }
}

impl<B> HttpBody for Tracked<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Once a second: stop every running on-visit app whose idle timeout has passed.
pub(super) async fn watch_idle(proxy: Arc<Proxy>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for app in proxy.apps() {
            let Some(timeout) = app.idle_timeout else {
                continue;
            };
            if app.start_mode != StartMode::OnVisit {
                continue;
            }
            let running_for = {
                let s = app.state.borrow();
                if s.status != Status::Running {
                    continue;
                }
                s.uptime().unwrap_or_default()
            };
            if app.activity.idle_for(running_for) < timeout || !app.activity.try_close() {
                continue;
            }
            let engine = proxy.engine.clone();
            tokio::spawn(async move {
                tracing::info!(app = %app.name, "idle for {} s: going dormant", timeout.as_secs());
                engine.supervisor.idle(&app.name).await;
                app.activity.reopen();
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_gates() {
        let a = Arc::new(Activity::default());
        let g1 = a.enter().await;
        let g2 = a.enter().await;
        assert_eq!(a.open(), 2);
        assert!(!a.try_close(), "busy apps are not closed");
        drop(g1);
        drop(g2);
        assert_eq!(a.open(), 0);
        assert!(a.try_close());
        // A request during the stop waits for the gate to reopen.
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.enter().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "held while the gate is closed");
        a.reopen();
        let g = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.open(), 1);
        drop(g);
        assert_eq!(a.open(), 0);
    }

    #[test]
    fn idle_time_starts_with_the_run() {
        let a = Activity::default();
        assert_eq!(
            a.idle_for(Duration::from_secs(3)),
            Duration::from_secs(3),
            "never visited: idle since it started"
        );
        a.last.store(clock_ms().max(1), Ordering::Relaxed);
        assert!(a.idle_for(Duration::from_secs(3)) < Duration::from_secs(1));
    }
}
