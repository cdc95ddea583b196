//! The sampler: CPU and resident memory of every running app's whole process tree, and of the
//! host.
//!
//! Two probes behind one interface ([`Probe`]): on Linux a direct reader of `/proc` (one pass
//! over `/proc/<pid>/stat` per tick; cheaper than a per-process library call at scale, see
//! BENCHMARKS.md "Metrics and logs"), and everywhere the portable `sysinfo` crate. The probe is chosen at build time
//! (`/proc` exists only on Linux) and at run time (`sampler = "proc" | "sysinfo"` in
//! hangar.toml, or `HANGAR_SAMPLER`).
//!
//! Each app's figure is the sum over its leader and every descendant, so work done by children
//! and grandchildren is counted. CPU is computed per process from the growth of its cumulative
//! CPU time between two ticks, so a child that ends between ticks takes only its last partial
//! interval with it, never the whole history of the tree.

use crate::base::config::SamplerKind;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub cpu_percent: f64,
    pub memory_bytes: u64,
}

/// The whole machine.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct HostUsage {
    /// Busy share of all cores together (100 = the whole machine busy).
    pub cpu_percent: f64,
    pub cpus: usize,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

/// One process of an app's tree as a probe saw it: cumulative CPU time and resident memory.
#[derive(Debug, Clone, Copy)]
pub struct ProcFigures {
    pub pid: u32,
    /// Cumulative CPU time (user + system), microseconds.
    pub cpu_us: u64,
    pub rss_bytes: u64,
}

/// What one probe pass returns.
#[derive(Debug, Default)]
pub struct Scan {
    /// App name → the processes of its tree.
    pub trees: HashMap<String, Vec<ProcFigures>>,
    pub host: HostUsage,
    /// How many processes the pass looked at.
    pub processes: usize,
}

/// The one interface both readers implement.
pub trait Probe: Send {
    fn kind(&self) -> SamplerKind;
    /// Read the trees rooted at `roots` (app name → leader pid) and the host figures.
    fn scan(&mut self, roots: &[(String, u32)]) -> Scan;
}

/// Walk `children` from `root` (bounded, cycle-safe).
fn tree_of(root: u32, children: &HashMap<u32, Vec<u32>>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) || out.len() >= 100_000 {
            continue;
        }
        out.push(pid);
        if let Some(c) = children.get(&pid) {
            stack.extend(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// /proc

/// Reads `/proc` directly: one `stat` file per process, `/proc/stat` and `/proc/meminfo`.
pub struct ProcProbe {
    tck: u64,
    page: u64,
    cpus: usize,
    prev_host: Option<(u64, u64)>,
}

impl ProcProbe {
    /// `None` where there is no `/proc` to read.
    pub fn new() -> Option<ProcProbe> {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return None;
        }
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Some(ProcProbe {
            tck,
            page,
            cpus,
            prev_host: None,
        })
    }

    fn host(&mut self) -> HostUsage {
        let mut h = HostUsage {
            cpus: self.cpus,
            ..HostUsage::default()
        };
        if let Ok(s) = std::fs::read_to_string("/proc/stat") {
            if let Some(line) = s.lines().next() {
                let v: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                let total: u64 = v.iter().take(8).sum();
                // idle + iowait
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                if let Some((pt, pi)) = self.prev_host {
                    let dt = total.saturating_sub(pt);
                    let di = idle.saturating_sub(pi);
                    if dt > 0 {
                        h.cpu_percent = round1((dt.saturating_sub(di)) as f64 / dt as f64 * 100.0);
                    }
                }
                self.prev_host = Some((total, idle));
            }
        }
        if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
            let kib = |key: &str| -> Option<u64> {
                s.lines()
                    .find(|l| l.starts_with(key))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u64>()
                    .ok()
                    .map(|k| k * 1024)
            };
            let total = kib("MemTotal:").unwrap_or(0);
            let avail = kib("MemAvailable:").unwrap_or(0);
            h.memory_total_bytes = total;
            h.memory_used_bytes = total.saturating_sub(avail);
        }
        h
    }
}

struct ProcStat {
    ppid: u32,
    ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32, buf: &mut String) -> Option<ProcStat> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(buf)
        .ok()?;
    let rest = buf.get(buf.rfind(')')? + 2..)?;
    let mut f = rest.split(' ');
    // After the command: state(0) ppid(1) … utime(11) stime(12) … rss(21)
    let ppid = f.nth(1)?.parse().ok()?;
    let utime: u64 = f.nth(9)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    let rss_pages = f.nth(8)?.parse().ok()?;
    Some(ProcStat {
        ppid,
        ticks: utime + stime,
        rss_pages,
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

impl Probe for ProcProbe {
    fn kind(&self) -> SamplerKind {
        SamplerKind::Proc
    }

    fn scan(&mut self, roots: &[(String, u32)]) -> Scan {
        let mut scan = Scan {
            host: self.host(),
            ..Scan::default()
        };
        if roots.is_empty() {
            return scan;
        }
        let mut stats = HashMap::new();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut buf = String::with_capacity(512);
        for pid in all_pids() {
            if let Some(st) = read_stat(pid, &mut buf) {
                children.entry(st.ppid).or_default().push(pid);
                stats.insert(pid, st);
            }
        }
        scan.processes = stats.len();
        for (name, root) in roots {
            let procs = tree_of(*root, &children)
                .into_iter()
                .filter_map(|pid| {
                    let st = stats.get(&pid)?;
                    Some(ProcFigures {
                        pid,
                        cpu_us: st.ticks * 1_000_000 / self.tck,
                        rss_bytes: st.rss_pages * self.page,
                    })
                })
                .collect();
            scan.trees.insert(name.clone(), procs);
        }
        scan
    }
}

// ---------------------------------------------------------------------------------------------
// sysinfo

/// The portable reader.
pub struct SysinfoProbe {
    sys: sysinfo::System,
    cpus: usize,
}

impl SysinfoProbe {
    pub fn new() -> Option<SysinfoProbe> {
        let mut sys = sysinfo::System::new().ok()?;
        sys.refresh_cpu_usage();
        let cpus = sys.cpus().len().max(1);
        Some(SysinfoProbe { sys, cpus })
    }
}

impl Probe for SysinfoProbe {
    fn kind(&self) -> SamplerKind {
        SamplerKind::Sysinfo
    }

    fn scan(&mut self, roots: &[(String, u32)]) -> Scan {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate};
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let mut scan = Scan {
            host: HostUsage {
                cpu_percent: round1(self.sys.global_cpu_usage() as f64),
                cpus: self.cpus,
                memory_used_bytes: self.sys.used_memory(),
                memory_total_bytes: self.sys.total_memory(),
            },
            ..Scan::default()
        };
        if roots.is_empty() {
            return scan;
        }
        // sysinfo reads every process's threads on Linux, even with ProcessRefreshKind::nothing(),
        // unless `.without_tasks()` is asked.
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .without_tasks(),
        );
        let procs = self.sys.processes();
        scan.processes = procs.len();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in procs {
            // Threads listed as tasks have their process as parent; they are skipped above.
            if let Some(parent) = p.parent() {
                children
                    .entry(parent.as_u32())
                    .or_default()
                    .push(pid.as_u32());
            }
        }
        for (name, root) in roots {
            let figures = tree_of(*root, &children)
                .into_iter()
                .filter_map(|pid| {
                    let p = procs.get(&sysinfo::Pid::from_u32(pid))?;
                    Some(ProcFigures {
                        pid,
                        cpu_us: p.accumulated_cpu_time() * 1000,
                        rss_bytes: p.memory(),
                    })
                })
                .collect();
            scan.trees.insert(name.clone(), figures);
        }
        scan
    }
}

// ---------------------------------------------------------------------------------------------

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One tick's figures, as the live stream carries them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix time, milliseconds.
    pub t: i64,
    pub host: HostUsage,
    pub apps: std::collections::BTreeMap<String, Usage>,
}

struct Prev {
    at: Option<Instant>,
    cpu: HashMap<u32, u64>,
}

/// Turns a probe's counters into rates and keeps the latest figures.
pub struct Sampler {
    probe: Mutex<Box<dyn Probe>>,
    kind: SamplerKind,
    prev: Mutex<Prev>,
    latest: RwLock<HashMap<String, Usage>>,
    host: RwLock<Option<HostUsage>>,
    processes: std::sync::atomic::AtomicUsize,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// The platform's best probe (see [`SamplerKind::auto`]).
    pub fn new() -> Sampler {
        Self::with_kind(SamplerKind::auto())
    }

    /// The probe asked for; where it cannot run (no `/proc`), the other one.
    pub fn with_kind(kind: SamplerKind) -> Sampler {
        let probe: Box<dyn Probe> = match kind {
            SamplerKind::Proc => match ProcProbe::new() {
                Some(p) => Box::new(p),
                None => Self::sysinfo_or_proc(),
            },
            SamplerKind::Sysinfo => Self::sysinfo_or_proc(),
        };
        Sampler {
            kind: probe.kind(),
            probe: Mutex::new(probe),
            prev: Mutex::new(Prev {
                at: None,
                cpu: HashMap::new(),
            }),
            latest: RwLock::new(HashMap::new()),
            host: RwLock::new(None),
            processes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn sysinfo_or_proc() -> Box<dyn Probe> {
        match SysinfoProbe::new() {
            Some(p) => Box::new(p),
            None => match ProcProbe::new() {
                Some(p) => Box::new(p),
                None => Box::new(NoProbe),
            },
        }
    }

    pub fn kind(&self) -> SamplerKind {
        self.kind
    }

    /// Sample the trees rooted at `roots` (app name → leader pid). Blocking: call it off the
    /// async workers.
    pub fn tick(&self, roots: &[(String, u32)]) -> Snapshot {
        let scan = self
            .probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .scan(roots);
        let now = Instant::now();
        let mut prev = self.prev.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed_us = prev
            .at
            .map(|t| now.duration_since(t).as_micros() as f64)
            .unwrap_or(0.0);
        let mut cpu_now = HashMap::new();
        let mut latest = HashMap::new();
        for (name, procs) in &scan.trees {
            let (mut used_us, mut rss) = (0u64, 0u64);
            for p in procs {
                rss += p.rss_bytes;
                // A process first seen now counts from zero only if we have a previous tick to
                // compare with; its whole CPU time fell in this interval or it is newly adopted.
                let before = prev.cpu.get(&p.pid).copied();
                used_us += match before {
                    Some(b) if p.cpu_us >= b => p.cpu_us - b,
                    Some(_) => p.cpu_us,
                    None if prev.at.is_some() => p.cpu_us.min(elapsed_us as u64),
                    None => 0,
                };
                cpu_now.insert(p.pid, p.cpu_us);
            }
            let cpu = if elapsed_us > 0.0 {
                used_us as f64 / elapsed_us * 100.0
            } else {
                0.0
            };
            latest.insert(
                name.clone(),
                Usage {
                    cpu_percent: round1(cpu),
                    memory_bytes: rss,
                },
            );
        }
        *prev = Prev {
            at: Some(now),
            cpu: cpu_now,
        };
        drop(prev);
        self.processes
            .store(scan.processes, std::sync::atomic::Ordering::Relaxed);
        *self.host.write().unwrap_or_else(|p| p.into_inner()) = Some(scan.host);
        let snapshot = Snapshot {
            t: unix_ms(SystemTime::now()),
            host: scan.host,
            apps: latest.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = latest;
        snapshot
    }

    pub fn usage(&self, name: &str) -> Option<Usage> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    pub fn host(&self) -> Option<HostUsage> {
        *self.host.read().unwrap_or_else(|p| p.into_inner())
    }

    /// How many processes the last tick looked at.
    pub fn processes(&self) -> usize {
        self.processes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Where neither probe can run: no figures, never an error.
struct NoProbe;

impl Probe for NoProbe {
    fn kind(&self) -> SamplerKind {
        SamplerKind::Sysinfo
    }
    fn scan(&mut self, _roots: &[(String, u32)]) -> Scan {
        Scan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(ms: u64) {
        let t = Instant::now();
        let mut x = 1u64;
        while t.elapsed().as_millis() < ms as u128 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn both_probes_see_this_process() {
        for kind in [SamplerKind::Proc, SamplerKind::Sysinfo] {
            let s = Sampler::with_kind(kind);
            assert_eq!(s.kind(), kind);
            let roots = vec![("me".to_string(), std::process::id())];
            s.tick(&roots);
            busy(300);
            let snap = s.tick(&roots);
            let u = snap.apps["me"];
            assert!(u.memory_bytes > 1 << 20, "{kind:?}: {u:?}");
            // It burned CPU between the ticks, and no more than the machine's cores allow. (How
            // much depends on what else runs: on a loaded machine 300 ms of wall time can hold
            // little of this thread's time, so the floor is only "some".)
            let ceiling = 100.0 * snap.host.cpus as f64 + 50.0;
            assert!(
                u.cpu_percent > 0.5 && u.cpu_percent < ceiling,
                "{kind:?}: {u:?}"
            );
            assert!(snap.host.memory_total_bytes > 0);
            assert!(snap.host.cpus >= 1);
        }
    }
}
