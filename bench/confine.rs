//! What Landlock confinement adds to an app's start, same run: the engine's own launch path
//! (`launch::command`, spawned and waited) for a program that exits at once (`/bin/true`),
//! unconfined and confined (`confine::prepare`: the plan walked from `/` around the holes and
//! the ruleset made, then applied in the child), one of each per round. Printed: the median of
//! the rounds' differences (wall clock, so the machine's load is in it), and the engine's own
//! CPU time for `prepare` (this thread's clock: the part load does not inflate). Two layouts:
//! Hangar's home in the user's data folder (as installed) and in /tmp (as the tests have it,
//! which opens /tmp up entry by entry).
//!
//! `cargo bench --bench confine` (or `--profile dev` for a debug build: the figures are then
//! an upper bound).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hangar::run::{confine, launch};

const ROUNDS: usize = 300;

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One start, waited for: (wall time, the engine thread's CPU time in `prepare`).
async fn run(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &PathBuf,
    l: Option<&confine::Launch<'_>>,
) -> (f64, f64) {
    let t = Instant::now();
    let cpu = thread_cpu();
    let c = l.map(|l| confine::prepare("bench", true, l).expect("confine"));
    let prepare_cpu = thread_cpu() - cpu;
    let ruleset = c.as_ref().and_then(|c| c.ruleset());
    let status = launch::command(argv, env, cwd, ruleset, &launch::Resources::default())
        .spawn()
        .expect("spawn")
        .wait()
        .await
        .expect("wait");
    assert!(status.success());
    (
        t.elapsed().as_secs_f64() * 1e3,
        prepare_cpu.as_secs_f64() * 1e3,
    )
}

fn measure(rt: &tokio::runtime::Runtime, home: &Path, what: &str) {
    let data = home.join("apps/a");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(home.join("token"), "t").unwrap();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let argv = vec!["/bin/true".to_string()];
    let homes = confine::user_homes();
    let l = confine::Launch {
        home,
        data_dir: &data,
        cwd: &data,
        writable: &[],
        env: &env,
        user_homes: &homes,
    };
    let (mut off, mut on, mut diff, mut cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..10 {
            run(&argv, &env, &data, None).await;
            run(&argv, &env, &data, Some(&l)).await;
        }
        for _ in 0..ROUNDS {
            let (a, _) = run(&argv, &env, &data, None).await;
            let (b, c) = run(&argv, &env, &data, Some(&l)).await;
            off.push(a);
            on.push(b);
            diff.push(b - a);
            cpu.push(c);
        }
    });
    let p = confine::plan(&l);
    println!(
        "{what}: {} grants; start unconfined {:.2} ms, confined {:.2} ms (medians of {ROUNDS}); added: {:.2} ms (median of the rounds' differences), of which the engine's CPU in prepare {:.2} ms",
        p.grants.len(),
        median_ms(off),
        median_ms(on),
        median_ms(diff),
        median_ms(cpu),
    );
}

fn main() {
    if confine::support().is_err() {
        println!("this kernel has no Landlock: nothing to measure");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data_home = dirs::data_dir().expect("a data folder");
    std::fs::create_dir_all(&data_home).unwrap();
    let installed = tempfile::Builder::new()
        .prefix("hangar-bench-")
        .tempdir_in(&data_home)
        .unwrap();
    measure(&rt, installed.path(), "home in the data folder");
    let in_tmp = tempfile::tempdir().unwrap();
    measure(&rt, in_tmp.path(), "home in /tmp");
}
