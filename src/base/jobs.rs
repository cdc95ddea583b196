//! Long operations (backups, restores) run as jobs: the API answers at once with the job's id,
//! and `GET /api/v1/jobs/{id}` reports its step and progress until it is done or failed.
//!
//! Invariants: bounded (the newest [`KEEP`] jobs are kept; older finished ones are forgotten);
//! a job's state only moves forward (running → done | failed), and a finished job carries
//! either its result or its error.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// How many jobs are remembered.
pub const KEEP: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobState {
    pub id: String,
    /// `backup` or `restore`.
    pub kind: String,
    pub app: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// What it is doing now ("dumping the database", "archiving the data folder", …).
    pub step: String,
    /// Bytes written (backup) or read (restore) so far.
    pub bytes: u64,
    /// The bytes expected in all, when known.
    pub total_bytes: Option<u64>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub started_at: String,
}

/// One job's handle: cheap to clone, shared by the task doing the work and the API.
#[derive(Clone)]
pub struct Job(Arc<Mutex<JobState>>);

impl Job {
    /// A job nobody polls (an automatic backup inside the supervisor).
    pub fn detached(kind: &str, app: &str) -> Job {
        Job(Arc::new(Mutex::new(JobState {
            id: crate::base::secret::random_hex(8),
            kind: kind.to_string(),
            app: app.to_string(),
            state: "running".into(),
            step: "starting".into(),
            bytes: 0,
            total_bytes: None,
            result: None,
            error: None,
            started_at: crate::base::clock::now(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut JobState) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn id(&self) -> String {
        self.with(|s| s.id.clone())
    }

    pub fn step(&self, step: impl Into<String>) {
        let step = step.into();
        tracing::debug!(job = %self.id(), "{step}");
        self.with(|s| s.step = step);
    }

    pub fn add_bytes(&self, n: u64) {
        self.with(|s| s.bytes = s.bytes.saturating_add(n));
    }

    pub fn set_total(&self, total: u64) {
        self.with(|s| s.total_bytes = Some(total));
    }

    pub fn done(&self, result: serde_json::Value) {
        self.with(|s| {
            s.state = "done".into();
            s.step = "done".into();
            s.result = Some(result);
        });
    }

    pub fn failed(&self, error: String) {
        self.with(|s| {
            s.state = "failed".into();
            s.step = "failed".into();
            s.error = Some(error);
        });
    }

    pub fn snapshot(&self) -> JobState {
        self.with(|s| s.clone())
    }
}

/// The engine's jobs, newest last.
#[derive(Default)]
pub struct Jobs(Mutex<VecDeque<Job>>);

impl Jobs {
    pub fn start(&self, kind: &str, app: &str) -> Job {
        let job = Job::detached(kind, app);
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= KEEP {
            // Forget the oldest finished job; if every one still runs, the oldest one.
            let i = q
                .iter()
                .position(|j| j.snapshot().state != "running")
                .unwrap_or(0);
            q.remove(i);
        }
        q.push_back(job.clone());
        job
    }

    pub fn get(&self, id: &str) -> Option<JobState> {
        let q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().map(|j| j.snapshot()).find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_finished_first_out() {
        let jobs = Jobs::default();
        let first = jobs.start("backup", "a");
        let first_id = first.id();
        for _ in 0..KEEP + 5 {
            jobs.start("backup", "b").done(serde_json::json!({}));
        }
        assert_eq!(jobs.0.lock().unwrap().len(), KEEP);
        assert!(
            jobs.get(&first_id).is_some(),
            "a running job is kept over finished ones"
        );
        first.failed("no".into());
        assert_eq!(jobs.get(&first_id).unwrap().error.as_deref(), Some("no"));
    }
}
