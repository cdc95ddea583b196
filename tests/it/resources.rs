//! Resources: a per-app memory limit (restart with the reason, `error` when it keeps
//! happening, the kernel's ceiling where cgroups can be made), the machine's memory budget
//! (least recently visited apps put to sleep, pinned ones never, no request lost) and the CPU
//! priority of an app's whole process group. Real engine, real `hangar-demo` processes.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn an_app_over_its_memory_limit_is_restarted_with_the_reason_and_ends_in_error() {
    // Grows 8 MiB a second: passes 48 MiB within seconds, well below the kernel's ceiling
    // (112 MiB) when the sampler's three samples in a row have seen it over.
    let rt = demo_runtime(
        "grow",
        &["--grow-mb-per-s", "8"],
        "restart_limit = 2\nrestart_backoff_max = 1",
    );
    let e = TestEngine::start_with(&rt);
    let err = e.fails(&["create", "leaky", "--runtime", "grow", "--memory-max", "2M"]);
    assert!(err.contains("memory_max"), "{err}");
    let err = e.fails(&[
        "create",
        "leaky",
        "--runtime",
        "grow",
        "--memory-max",
        "lots",
    ]);
    assert!(err.contains("memory_max") && err.contains("600M"), "{err}");
    assert!(!e.listed("leaky"), "a refused create leaves nothing");

    e.ok(&[
        "create",
        "leaky",
        "--runtime",
        "grow",
        "--memory-max",
        "48M",
    ]);
    let v = e.app("leaky");
    assert_eq!(v["memory_max"], 48 << 20, "{v}");
    e.ok(&["start", "leaky"]);
    let v = e.app("leaky");
    let by = v["memory_enforced_by"].as_str().unwrap_or("").to_string();
    assert!(by.contains("sampler"), "status says what enforces it: {v}");

    // The first restart: the reason in the status and the log, counted.
    wait_until("a restart for memory", Duration::from_secs(30), || {
        e.app("leaky")["memory_restarts"].as_u64().unwrap_or(0) >= 1
    });
    let v = e.app("leaky");
    let reason = v["reason"].as_str().unwrap_or("").to_string();
    assert!(
        reason.starts_with("memory limit: ") && reason.ends_with(" over 48 MiB"),
        "{v}"
    );
    let log = e.log_text("leaky");
    assert!(log.contains(&reason), "the log says why: {log}");

    // It keeps growing: after restart_limit times, `error`, saying why.
    e.wait_status("leaky", "error", Duration::from_secs(60));
    let v = e.app("leaky");
    let error = v["error"].as_str().unwrap_or("");
    assert!(
        error.contains("over its memory limit 2 times in a row") && error.contains("48 MiB"),
        "{v}"
    );
    assert!(v["pid"].is_null(), "nothing runs in error: {v}");
    let status = e.ok(&["status", "leaky"]);
    assert!(
        status.contains("memory limit") && status.contains("48.0 MiB"),
        "{status}"
    );

    // An edit removes the app's own limit; a start clears the reason.
    let out = e.ok(&["edit", "leaky", "--memory-max", "0"]);
    assert!(
        out.contains("memory_max: ") && out.contains("→ none"),
        "{out}"
    );
    assert!(e.app("leaky")["memory_max"].is_null());
}

#[test]
fn the_kernel_stops_a_tree_that_races_past_its_limit_where_cgroups_can_be_made() {
    // 64 MiB a second: past the ceiling (48 + 64 MiB) in about two seconds, before three
    // samples can see it over the limit.
    let rt = demo_runtime(
        "race",
        &["--grow-mb-per-s", "64"],
        "memory_max = \"48M\"\nrestart_limit = 1",
    );
    let e = TestEngine::start_with(&rt);
    e.ok(&["create", "racer", "--runtime", "race"]);
    assert_eq!(
        e.app("racer")["memory_max"],
        48 << 20,
        "the runtime's default applies"
    );
    let _ = e.hangar(&["start", "racer"]);
    e.wait_status("racer", "error", Duration::from_secs(60));
    let v = e.app("racer");
    let by = v["memory_enforced_by"].as_str().unwrap_or("");
    let error = v["error"].as_str().unwrap_or("");
    if by.contains("kernel") {
        // This machine lets Hangar make cgroups (the test machine does: root, cgroup v1 or v2).
        assert!(
            error.contains("memory limit: killed by the kernel at 112 MiB (limit 48 MiB)"),
            "{v}"
        );
    } else {
        // Elsewhere the sampler alone says so, and why the kernel does not.
        assert!(by.contains("not available"), "{v}");
        assert!(error.contains("over 48 MiB"), "{v}");
    }
    assert_eq!(v["memory_restarts"], 1, "{v}");
}

/// `hold` MiB held by a running demo app, through the proxy.
fn hold(e: &TestEngine, app: &str, mb: u32) {
    let (status, body) = e.get(&format!("/_app/{app}/api/hold?mb={mb}"));
    assert_eq!(status, 200, "{app}: {body}");
}

fn desired_and_status(e: &TestEngine, app: &str) -> (String, String) {
    let (code, v) = e.api(reqwest::Method::GET, &format!("/apps/{app}"), None);
    assert_eq!(code, 200, "{v}");
    (
        v["desired"].as_str().unwrap_or("").into(),
        v["status"].as_str().unwrap_or("").into(),
    )
}

/// Wait until the sampler has seen every running app at what it holds now.
fn until_sampled(e: &TestEngine, apps: &[&str], at_least: u64) {
    wait_until(
        "the sampler to see the held memory",
        Duration::from_secs(10),
        || {
            apps.iter().all(|a| {
                e.app(a)["memory_bytes"]
                    .as_u64()
                    .is_some_and(|m| m >= at_least)
            })
        },
    );
}

#[test]
fn a_memory_budget_puts_the_least_recently_visited_app_to_sleep_never_a_pinned_one() {
    // Three apps that each hold ~130 MiB; the budget fits two of them.
    let e = TestEngine::start_with("memory_budget = \"330M\"\n");
    for a in ["a1", "b1", "c1"] {
        e.ok(&["create", a]);
    }
    hold(&e, "a1", 120);
    hold(&e, "b1", 120);
    until_sampled(&e, &["a1", "b1"], 120 << 20);
    assert_eq!(desired_and_status(&e, "a1").1, "running");
    assert_eq!(desired_and_status(&e, "b1").1, "running");

    // The third: over the budget, so the least recently visited (a1) goes to sleep.
    hold(&e, "c1", 120);
    wait_until("a1 to be put to sleep", Duration::from_secs(15), || {
        desired_and_status(&e, "a1") == ("dormant".into(), "stopped".into())
    });
    let v = e.app("a1");
    let reason = v["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("memory budget: apps hold") && reason.contains("least recently visited"),
        "{v}"
    );
    assert!(e.log_text("a1").contains("memory budget"), "logged");
    // `hangar list` ends with what is left of the budget, and how many sleep for it.
    let list = e.ok(&["list"]);
    let last = list.lines().last().unwrap_or("");
    assert!(
        last.starts_with("memory budget: apps hold ")
            && last.contains(" of 330.0 MiB; 1 put to sleep for it"),
        "{list}"
    );
    assert_eq!(desired_and_status(&e, "b1").1, "running");
    assert_eq!(desired_and_status(&e, "c1").1, "running");
    let (code, host) = e.api(reqwest::Method::GET, "/host", None);
    assert_eq!(code, 200, "{host}");
    let fig = &host["memory_budget"];
    assert_eq!(fig["budget_bytes"], 330u64 << 20, "{host}");
    assert!(
        fig["used_bytes"].as_u64().unwrap_or(u64::MAX) <= 330 << 20,
        "{host}"
    );

    // b1 pinned: waking a1 (which took ~130 MiB) makes room first, and the budget passes
    // over pinned b1 to put c1 to sleep, although b1 was visited less recently.
    let (code, v) = e.api(
        reqwest::Method::PATCH,
        "/apps/b1",
        Some(json!({ "pinned": true })),
    );
    assert_eq!(code, 200, "{v}");
    let (code, body) = e.get("/_app/a1/api/notes");
    assert_eq!(code, 200, "the visit that wakes a1 answers: {body}");
    assert_eq!(
        desired_and_status(&e, "c1"),
        ("dormant".into(), "stopped".into()),
        "room was made before a1 woke"
    );
    let reason = e.app("c1")["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.contains("making room for a1"), "{reason}");
    assert_eq!(
        desired_and_status(&e, "b1").1,
        "running",
        "pinned: never chosen"
    );
    hold(&e, "a1", 120);
    until_sampled(&e, &["a1", "b1"], 120 << 20);
    // Within the budget now: nobody else is put to sleep.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(desired_and_status(&e, "a1").1, "running");
    assert_eq!(desired_and_status(&e, "b1").1, "running");

    // Every app answers a visit, the sleeping one included (woken, making room again).
    for a in ["a1", "b1", "c1"] {
        let (code, body) = e.get(&format!("/_app/{a}/api/notes"));
        assert_eq!(code, 200, "{a}: {body}");
    }
}

#[test]
fn nice_applies_to_the_whole_process_group_and_follows_an_edit() {
    let rt = demo_runtime("lazy", &[], "nice = 5");
    let e = TestEngine::start_with(&rt);
    let err = e.fails(&["create", "x", "--nice", "20"]);
    assert!(err.contains("nice") && err.contains("-20"), "{err}");
    e.ok(&["create", "own", "--runtime", "lazy", "--nice", "7"]);
    e.ok(&["create", "dflt", "--runtime", "lazy"]);
    e.ok(&["start", "own"]);
    e.ok(&["start", "dflt"]);

    let leader = e.pid("own");
    let child = e.grandchild("own", 60);
    assert_eq!(nice_of(leader), 7, "the app's own value");
    assert_eq!(nice_of(child), 7, "its child inherits it");
    assert_eq!(e.app("own")["nice"], 7);
    assert_eq!(nice_of(e.pid("dflt")), 5, "the runtime's default");
    assert!(e.log_text("own").contains("nice 7"), "the log says it");

    // An edit renices the running group at once: the leader and its child.
    e.ok(&["edit", "own", "--nice", "2"]);
    assert_eq!(nice_of(leader), 2);
    assert_eq!(nice_of(child), 2);
    // 0 removes the app's own value: the runtime's applies.
    e.ok(&["edit", "own", "--nice", "0"]);
    assert_eq!(nice_of(leader), 5);
    assert_eq!(e.app("own")["nice"], 5);
}
