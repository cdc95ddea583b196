//! The crash-consistency harness (issue 8): the engine is killed with SIGKILL at random moments
//! during create, delete and upgrade, many times. After every restart the registry and the data
//! service agree, what a cut-short create made is gone, a cut-short delete is finished, and
//! nothing Hangar did not make is ever dropped.
//!
//! The moments are drawn from a seed printed at the start (HANGAR_CHAOS_SEED replays a run);
//! HANGAR_CHAOS_ROUNDS sets how many rounds (default 12).

use crate::common;

use std::process::{Child, Stdio};

use std::time::Duration;

use common::notes::{add_note, note_bodies};
use common::sql::*;
use common::*;

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn db_exists(url: &str, name: &str) -> bool {
    exists(url, Object::PgDatabase, name)
}

fn cli(e: &TestEngine, args: &[&str]) -> Child {
    hangar_cmd(e.home_path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Run `hangar ARGS`, kill the engine (and the CLI waiting on it) after `ms` milliseconds, then
/// start the engine again.
fn crash_during(e: &mut TestEngine, args: &[&str], ms: u64) {
    let mut client = cli(e, args);
    std::thread::sleep(Duration::from_millis(ms));
    // The client first: a CLI that finds its engine gone starts one in the background (as pm2
    // does), which would race the engine this harness starts.
    let _ = client.kill();
    let _ = client.wait();
    e.crash_engine();
    e.spawn();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.home_path().join("engine.json")).unwrap())
            .unwrap();
    assert_eq!(
        info["pid"].as_u64(),
        e.engine_pid().map(u64::from),
        "the harness's own engine serves this home"
    );
}

/// The registry and the server agree about every app this run made.
fn assert_consistent(e: &TestEngine, pg: &str, names: &[String], step: &str, seed: u64) {
    let listed = e.names();
    let log = std::fs::read_to_string(e.home_path().join("serve.log")).unwrap_or_default();
    let tail: String = log
        .lines()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    let step = &format!("{step}\nthe engine's last lines:\n{tail}\n");
    for n in names {
        let registered = listed.contains(n);
        let on_server = db_exists(pg, &format!("hangar_{n}"));
        let role = exists(pg, Object::PgRole, &format!("hangar_{n}"));
        assert_eq!(
            registered, on_server,
            "{step} (seed {seed}): {n} registered = {registered} but its database on the server = {on_server}"
        );
        assert_eq!(
            registered, role,
            "{step} (seed {seed}): {n} registered = {registered} but its role = {role}"
        );
        assert_eq!(
            registered,
            e.home_path().join("apps").join(n).exists(),
            "{step} (seed {seed}): {n}'s data folder disagrees with the registry"
        );
    }
    assert!(
        db_exists(pg, "hangar_chaos_keep"),
        "{step} (seed {seed}): a database Hangar did not make was dropped"
    );
    assert!(
        db_exists(pg, "unrelated_chaos_keep"),
        "{step} (seed {seed}): an unrelated database was dropped"
    );
}

#[test]
fn sigkill_at_random_moments_of_create_and_delete_leaves_everything_consistent() {
    let pg = pg();
    let seed: u64 = std::env::var("HANGAR_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let rounds: usize = std::env::var("HANGAR_CHAOS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    eprintln!("chaos seed {seed} ({rounds} rounds)");
    let mut rng = Rng(seed);
    // One database squats the identifier of an app name, another is unrelated: Hangar must never
    // drop either, whatever happens.
    for db in ["hangar_chaos_keep", "unrelated_chaos_keep"] {
        if !db_exists(&pg, db) {
            sql(&pg, &[&format!("CREATE DATABASE {db}")]);
        }
    }
    let mut e = TestEngine::start_with(&data_service(&pg));
    // Names of this run only (a replayed seed must not meet a failed run's leftovers).
    let run = format!(
        "{:x}",
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64)
            % 0xffffff
    );
    let mut names = Vec::new();
    for round in 0..rounds {
        let name = format!("q{run}r{round}");
        names.push(name.clone());
        // A create, cut short somewhere in its (about one second) life, or not at all.
        let at = rng.below(1200);
        crash_during(&mut e, &["create", &name], at);
        assert_consistent(
            &e,
            &pg,
            &names,
            &format!("round {round}: create killed after {at} ms"),
            seed,
        );
        // A create that must be refused (its database name is taken), killed at random too.
        let at = rng.below(300);
        crash_during(&mut e, &["create", "chaos_keep"], at);
        assert_consistent(
            &e,
            &pg,
            &names,
            &format!("round {round}: refused create killed after {at} ms"),
            seed,
        );
        // A delete with --drop-db of an app that exists, cut short.
        if e.listed(&name) {
            let at = rng.below(400);
            crash_during(&mut e, &["delete", &name, "--drop-db", "--yes"], at);
            assert_consistent(
                &e,
                &pg,
                &names,
                &format!("round {round}: delete killed after {at} ms"),
                seed,
            );
        }
    }
    // Whatever is left is still usable, and deletes cleanly.
    for n in &names {
        if e.listed(n) {
            e.ok(&["delete", n, "--drop-db", "--yes"]);
        }
    }
    assert_consistent(&e, &pg, &names, "after the last round", seed);
}

#[test]
fn sigkill_during_an_upgrade_never_loses_the_apps_data() {
    let mut e = TestEngine::start_with_env("", &[("HANGAR_DEMO_SCHEMA", "1")]);
    e.ok(&["create", "u1", "--start-mode", "with-main"]);
    e.wait_status("u1", "running", Duration::from_secs(30));
    add_note(&e, "u1", "kept through chaos");
    let mut rng = Rng(std::process::id() as u64 | 1);
    e.set_env("HANGAR_DEMO_SCHEMA", "2");
    for _ in 0..5 {
        // The engine comes up, finds the runtime moved to schema 2 and upgrades u1: kill it
        // somewhere in there.
        e.stop_engine();
        e.spawn();
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        e.crash_engine();
        e.spawn();
        e.wait_status("u1", "running", Duration::from_secs(30));
        assert_eq!(note_bodies(&e, "u1"), vec!["kept through chaos"]);
    }
    let (_, info) = e.get("/_app/u1/api/info");
    assert!(info.contains("\"schema_version\":2"), "{info}");
}
