//! Sampler cost at 10, 100 and 500 processes, for both probes: CPU time of one tick (this
//! thread's own CPU clock), and what that costs at one tick a second (% of one core).
//!
//! The processes are real: apps of 5 processes each (`sh` + 4 `sleep`), so each tick walks the
//! trees as the engine does. The `/proc` probe reads every process on the machine, not only the
//! apps', so the count of processes seen is printed too.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hangar::base::config::SamplerKind;
use hangar::run::sampler::Sampler;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn spawn_apps(n_procs: usize) -> Vec<Child> {
    (0..n_procs / 5)
        .map(|_| {
            let mut c = Command::new("sh");
            // A process group of its own, so the whole app ends by its group id.
            std::os::unix::process::CommandExt::process_group(&mut c, 0);
            c.arg("-c")
                .arg("sleep 600 & sleep 600 & sleep 600 & sleep 600 & wait")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sh")
        })
        .collect()
}

fn main() {
    let ticks = 30;
    println!("| processes in apps | apps | probe | processes seen | CPU per tick | % of a core at 1 Hz |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in [10usize, 100, 500] {
        let mut kids = spawn_apps(n);
        std::thread::sleep(Duration::from_millis(500));
        let roots: Vec<(String, u32)> = kids
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("app{i}"), c.id()))
            .collect();
        for kind in [SamplerKind::Proc, SamplerKind::Sysinfo] {
            let s = Sampler::with_kind(kind);
            s.tick(&roots); // warm: first pass fills caches
            let mut per_tick = Vec::new();
            let mut counted = 0usize;
            for _ in 0..ticks {
                let t = thread_cpu();
                let snap = s.tick(&roots);
                per_tick.push(thread_cpu() - t);
                counted = snap.apps.len();
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(counted, roots.len());
            per_tick.sort();
            let median = per_tick[per_tick.len() / 2];
            println!(
                "| {n} | {} | {} | {} | {:.2} ms | {:.2} % |",
                roots.len(),
                kind.as_str(),
                s.processes(),
                median.as_secs_f64() * 1000.0,
                median.as_secs_f64() * 100.0
            );
        }
        for k in &mut kids {
            // SAFETY: signals the group this bench created.
            unsafe { libc::kill(-(k.id() as i32), libc::SIGKILL) };
            let _ = k.wait();
        }
    }
}
