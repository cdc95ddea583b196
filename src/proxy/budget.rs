//! The memory budget of the whole machine (`memory_budget` in hangar.toml): when the apps'
//! memory passes it, on-visit apps are put to sleep, least recently visited first, until it
//! fits; a visit that wakes an app that would not fit puts others to sleep first.
//!
//! It reuses the idle stop's machinery (`activity.rs`): an app is put to sleep only when its
//! gate closes, that is when no request is in flight and no WebSocket or streaming answer is
//! open; a request that arrives meanwhile waits for the stop and wakes it again, so no request
//! is lost. The app goes `dormant` (woken on its next visit) with the reason recorded in its
//! state and log.
//!
//! Invariants: with-main apps, pinned apps and the main app are never put to sleep; an app
//! is never put to sleep to make room for itself; one eviction round runs at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{AppEntry, Proxy};
use crate::base::validate::MAIN;
use crate::run::monitor::BUDGET_REASON;
use crate::run::supervisor::{mib, Status};
use crate::store::registry::StartMode;

/// What the budget remembers between rounds.
#[derive(Default)]
pub(super) struct Budget {
    /// The most each app's tree held during its last run: what waking it will take again.
    seen: Mutex<HashMap<String, u64>>,
    /// One round at a time (a burst of visits must not put every app to sleep at once).
    round: tokio::sync::Mutex<()>,
}

impl Budget {
    /// What waking `name` is expected to take: the most it held in its last run (0: unknown).
    /// Its new run is measured afresh.
    fn take_need(&self, name: &str) -> u64 {
        self.seen
            .lock()
            .map(|mut s| s.remove(name).unwrap_or(0))
            .unwrap_or(0)
    }

    fn note(&self, proxy: &Proxy) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        for app in proxy.apps() {
            let running = app.state.borrow().status == Status::Running;
            if let (true, Some(u)) = (running, proxy.engine.sampler.usage(&app.name)) {
                let was = seen.entry(app.name.clone()).or_insert(0);
                // A new run starts its figure again; within a run keep the peak.
                *was = (*was).max(u.memory_bytes);
            }
        }
        seen.retain(|n, _| proxy.engine.supervisor.get(n).is_some());
    }
}

/// Can the budget put `app` to sleep (other than `except`)?
fn evictable(app: &AppEntry, except: Option<&str>) -> bool {
    app.start_mode == StartMode::OnVisit
        && !app.pinned
        && app.name != MAIN
        && Some(app.name.as_str()) != except
        && app.state.borrow().status == Status::Running
}

/// Put apps to sleep, least recently visited first, until the apps' memory plus `need` fits
/// the budget (or nothing more can be put to sleep). `for_app`: the app being woken, whose
/// visit asked for the room. Returns how many were put to sleep.
async fn fit(proxy: &Proxy, need: u64, for_app: Option<&str>) -> usize {
    let budget = &proxy.budget;
    let _round = budget.round.lock().await;
    let mut evicted = 0;
    // Bounded: every turn puts one app to sleep or ends.
    for _ in 0..proxy.apps().len() {
        let Some(fig) = crate::run::monitor::budget(&proxy.engine) else {
            return evicted;
        };
        if fig.used_bytes + need <= fig.budget_bytes {
            return evicted;
        }
        let mut candidates: Vec<Arc<AppEntry>> = proxy
            .apps()
            .into_iter()
            .filter(|a| evictable(a, for_app))
            .collect();
        // Least recently visited first (never visited: 0, first of all); a name breaks ties.
        candidates
            .sort_by(|a, b| (a.activity.last_ms(), &a.name).cmp(&(b.activity.last_ms(), &b.name)));
        // The first whose gate closes: nothing in flight, no open connection.
        let Some(victim) = candidates.into_iter().find(|a| a.activity.try_close()) else {
            tracing::debug!(
                "memory budget: {} used of {}, but no app can be put to sleep now",
                mib(fig.used_bytes + need),
                mib(fig.budget_bytes)
            );
            return evicted;
        };
        let idle = Some(victim.activity.last_ms())
            .filter(|l| *l > 0)
            .map(|l| {
                let ago = Duration::from_millis(super::activity::clock_ms().saturating_sub(l));
                format!("last visit {} s ago", ago.as_secs())
            })
            .unwrap_or_else(|| "never visited since it started".into());
        let why = match for_app {
            Some(other) => format!(
                "{BUDGET_REASON}: making room for {other} (apps hold {} of {}, {other} took {} in its last run); put to sleep as the least recently visited ({idle})",
                mib(fig.used_bytes),
                mib(fig.budget_bytes),
                mib(need)
            ),
            None => format!(
                "{BUDGET_REASON}: apps hold {} of {}; put to sleep as the least recently visited ({idle})",
                mib(fig.used_bytes),
                mib(fig.budget_bytes)
            ),
        };
        tracing::info!(app = %victim.name, "{why}");
        let stopped = proxy.engine.supervisor.evict(&victim.name, why).await;
        victim.activity.reopen();
        if stopped {
            evicted += 1;
        }
    }
    evicted
}

/// Before a visit wakes `app`: make the room it took in its last run.
pub(super) async fn make_room(proxy: &Proxy, app: &AppEntry) {
    if proxy.engine.config.memory_budget.is_none() {
        return;
    }
    let need = proxy.budget.take_need(&app.name);
    fit(proxy, need, Some(&app.name)).await;
}

/// Once a second (the sampler's pace while a budget is set): note each app's peak, and put
/// apps to sleep while the apps' memory is over the budget.
pub(super) async fn watch(proxy: Arc<Proxy>) {
    if proxy.engine.config.memory_budget.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        proxy.budget.note(&proxy);
        fit(&proxy, 0, None).await;
    }
}
