//! The sampler: CPU and resident memory of every running app's whole process tree.
//!
//! One pass over `/proc` per tick (cheaper than a per-process library call at scale, see
//! FACTS.md) builds the parent → children map; each app's figure is the sum over its leader and
//! every descendant, so work done by children and grandchildren is counted.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    pub cpu_percent: f64,
    pub memory_bytes: u64,
}

struct ProcStat {
    ppid: u32,
    ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // After the command: state(0) ppid(1) … utime(11) stime(12) … rss(21)
    Some(ProcStat {
        ppid: f.get(1)?.parse().ok()?,
        ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Keeps the previous tick's counters to turn them into rates.
pub struct Sampler {
    tck: f64,
    page: u64,
    prev: RwLock<(Option<Instant>, HashMap<String, u64>)>,
    latest: RwLock<HashMap<String, Usage>>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Sampler {
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        Sampler {
            tck,
            page,
            prev: RwLock::new((None, HashMap::new())),
            latest: RwLock::new(HashMap::new()),
        }
    }

    /// Sample the trees rooted at `roots` (app name → leader pid).
    pub fn tick(&self, roots: &[(String, u32)]) {
        let now = Instant::now();
        let mut stats = HashMap::new();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        if !roots.is_empty() {
            for pid in all_pids() {
                if let Some(st) = read_stat(pid) {
                    children.entry(st.ppid).or_default().push(pid);
                    stats.insert(pid, st);
                }
            }
        }
        let mut prev = self.prev.write().unwrap_or_else(|p| p.into_inner());
        let elapsed = prev
            .0
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        let mut ticks_now = HashMap::new();
        let mut latest = HashMap::new();
        for (name, root) in roots {
            let (mut ticks, mut rss) = (0u64, 0u64);
            let mut stack = vec![*root];
            let mut seen = 0;
            while let Some(pid) = stack.pop() {
                seen += 1;
                if seen > 100_000 {
                    break;
                }
                if let Some(st) = stats.get(&pid) {
                    ticks += st.ticks;
                    rss += st.rss_pages;
                }
                if let Some(c) = children.get(&pid) {
                    stack.extend(c);
                }
            }
            let cpu = match prev.1.get(name) {
                Some(before) if elapsed > 0.0 && ticks >= *before => {
                    (ticks - before) as f64 / self.tck / elapsed * 100.0
                }
                _ => 0.0,
            };
            ticks_now.insert(name.clone(), ticks);
            latest.insert(
                name.clone(),
                Usage {
                    cpu_percent: (cpu * 10.0).round() / 10.0,
                    memory_bytes: rss * self.page,
                },
            );
        }
        *prev = (Some(now), ticks_now);
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = latest;
    }

    pub fn usage(&self, name: &str) -> Option<Usage> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }
}
