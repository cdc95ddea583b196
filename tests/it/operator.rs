//! The operator's verbs (issue 17), through the real `hangar` binary on a real engine with real
//! app processes: `apply`/`dump`, bulk `start|stop|restart`, `logs` of every app, `edit` and
//! env files, `--json` on every verb, completions and man pages, the systemd unit.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write a file");
    p.display().to_string()
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The full view (env included) the API serves.
fn view(e: &TestEngine, name: &str) -> Value {
    let (status, v) = e.api(reqwest::Method::GET, &format!("/apps/{name}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn apply_creates_changes_prunes_and_a_second_run_changes_nothing() {
    let e = TestEngine::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let p1 = free_port();
    let demo = demo_bin().display().to_string();
    e.ok(&["create", "old1"]);
    // tool: every field an app has, its own program and resources included.
    let file = write(
        dir.path(),
        "apps.toml",
        &format!(
            r#"
[apps.shop]
display_name = "The shop"
port = {p1}
start_mode = "with-main"
[apps.shop.env]
API_KEY = "s3cret-one"

[apps.blog]
pinned = true
idle_timeout = 600

[apps.tool]
start_mode = "with-main"
memory_max = "64M"
nice = 5
[apps.tool.command]
argv = ["{demo}", "serve", "--port", "${{PORT}}"]
health = "/_health"
prefix = "keep"
"#
        ),
    );

    // A dry run shows the plan as a diff and changes nothing; env values never appear.
    let plan = e.ok(&["apply", "-f", &file, "--prune", "--dry-run"]);
    assert!(plan.contains("+ shop (create)"), "{plan}");
    assert!(plan.contains("+ blog (create)"), "{plan}");
    assert!(plan.contains("- old1 (delete, database kept)"), "{plan}");
    assert!(plan.contains("+ env.API_KEY"), "{plan}");
    assert!(plan.contains("+ tool (create)"), "{plan}");
    assert!(plan.contains("memory_max = 64M"), "{plan}");
    assert!(plan.contains("nice = 5"), "{plan}");
    assert!(plan.contains("command.argv = ["), "{plan}");
    assert!(!plan.contains("s3cret"), "a value is never printed: {plan}");
    assert!(plan.contains("plan: 3 to create, 0 to change"), "{plan}");
    assert!(!e.listed("shop") && e.listed("old1"));

    // Apply: created, pruned (its data folder kept aside), the with-main app running.
    let out = e.ok(&["apply", "-f", &file, "--prune"]);
    assert!(
        out.contains("applied: 3 created, 0 changed (0 restarted), 1 deleted"),
        "{out}"
    );
    assert!(!e.listed("old1"));
    let shop = view(&e, "shop");
    assert_eq!(shop["port"], p1);
    assert_eq!(shop["display_name"], "The shop");
    assert_eq!(shop["env"]["API_KEY"], "s3cret-one");
    e.wait_status("shop", "running", Duration::from_secs(30));
    let blog = view(&e, "blog");
    assert_eq!(
        (blog["pinned"].clone(), blog["idle_timeout"].clone()),
        (Value::Bool(true), Value::from(600))
    );
    let tool = view(&e, "tool");
    assert_eq!(tool["runtime"], "command", "{tool}");
    assert_eq!(tool["command"]["argv"][0], demo.as_str(), "{tool}");
    assert_eq!(tool["command"]["health"], "/_health", "{tool}");
    assert_eq!(
        (tool["memory_max"].clone(), tool["nice"].clone()),
        (Value::from(64u64 << 20), Value::from(5))
    );
    e.wait_status("tool", "running", Duration::from_secs(30));

    // The same file again: nothing changes, nothing restarts.
    let pid = e.pid("shop");
    let tool_pid = e.pid("tool");
    let again = e.ok(&["apply", "-f", &file, "--prune"]);
    assert!(
        again.contains("0 created, 0 changed (0 restarted), 0 deleted, 3 unchanged"),
        "{again}"
    );
    assert_eq!(e.pid("shop"), pid, "an unchanged app is not restarted");
    assert_eq!(e.pid("tool"), tool_pid, "an unchanged app is not restarted");

    // A changed env restarts the running app; a changed display name alone would not.
    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("s3cret-one", "s3cret-two")
        .replace("pinned = true", "pinned = false")
        .replace("memory_max = \"64M\"", "memory_max = \"96M\"");
    std::fs::write(&file, changed).unwrap();
    let plan = e.ok(&["apply", "-f", &file, "--dry-run", "--json"]);
    let plan = json_of(&plan);
    let shop_step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "shop")
        .cloned()
        .unwrap();
    assert_eq!(shop_step["action"], "change");
    assert_eq!(shop_step["restart"], true);
    assert!(!plan.to_string().contains("s3cret"), "{plan}");
    let out = e.ok(&["apply", "-f", &file]);
    assert!(out.contains("~ shop (change, restart)"), "{out}");
    assert!(out.contains("~ blog (change)"), "{out}");
    assert!(out.contains("~ pinned: true → false"), "{out}");
    assert!(out.contains("~ tool (change, restart)"), "{out}");
    assert!(out.contains("~ memory_max: 64M → 96M"), "{out}");
    e.wait_status("shop", "running", Duration::from_secs(30));
    assert_ne!(e.pid("shop"), pid, "the env changed: restarted");
    assert_eq!(view(&e, "shop")["env"]["API_KEY"], "s3cret-two");
    e.wait_status("tool", "running", Duration::from_secs(30));
    assert_ne!(
        e.pid("tool"),
        tool_pid,
        "the memory limit changed: restarted"
    );
    assert_eq!(view(&e, "tool")["memory_max"], 96u64 << 20);

    // A changed nice value alone is applied live, as `edit --nice` does: no restart.
    let tool_pid = e.pid("tool");
    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("nice = 5", "nice = 9");
    std::fs::write(&file, changed).unwrap();
    let out = e.ok(&["apply", "-f", &file]);
    assert!(out.contains("~ tool (change)\n"), "{out}");
    assert!(
        out.contains("~ nice: 5 → 9 (applied without restart)"),
        "{out}"
    );
    assert!(out.contains("1 changed (0 restarted)"), "{out}");
    assert_eq!(e.pid("tool"), tool_pid, "only the nice value changed");
    assert_eq!(nice_of(tool_pid), 9, "reniced at once");
    assert_eq!(view(&e, "tool")["nice"], 9);

    // dump, then apply of the dump: a no-op (env left out without --secrets, kept as is).
    let dumped = e.ok(&["dump"]);
    assert!(!dumped.contains("s3cret"), "{dumped}");
    assert!(dumped.contains("[apps.shop]"), "{dumped}");
    assert!(dumped.contains("[apps.tool.command]"), "{dumped}");
    assert!(dumped.contains("memory_max = \"96M\""), "{dumped}");
    assert!(dumped.contains("nice = 9"), "{dumped}");
    let dump_file = write(dir.path(), "dump.toml", &dumped);
    let out = e.ok(&["apply", "-f", &dump_file, "--prune"]);
    assert!(
        out.contains("0 created, 0 changed (0 restarted), 0 deleted, 3 unchanged"),
        "{out}"
    );
    let secrets = e.ok(&["dump", "--secrets"]);
    assert!(secrets.contains("s3cret-two"), "{secrets}");
    let secrets_file = write(dir.path(), "secrets.toml", &secrets);
    let out = e.ok(&["apply", "-f", &secrets_file]);
    assert!(out.contains("3 unchanged"), "{out}");

    // The dump made apps anew: on a fresh engine, the same apps with the same fields (this
    // engine's apps stopped: their ports are the file's).
    e.ok(&["stop", "--all"]);
    let fresh = TestEngine::start();
    let out = fresh.ok(&["apply", "-f", &secrets_file]);
    assert!(out.contains("applied: 3 created"), "{out}");
    let out = fresh.ok(&["apply", "-f", &secrets_file]);
    assert!(out.contains("3 unchanged"), "{out}");
    let again = view(&fresh, "tool");
    for key in ["command", "memory_max", "nice", "start_mode", "runtime"] {
        assert_eq!(again[key], view(&e, "tool")[key], "{key}");
    }
}

#[test]
fn a_bad_apps_file_names_the_app_and_field_and_changes_nothing() {
    let e = TestEngine::start();
    let dir = tempfile::tempdir().expect("temp dir");
    e.ok(&["create", "keep1"]);
    let before = e.list();
    // One good app, one bad: the good one is not created either.
    let bad_port = write(
        dir.path(),
        "a.toml",
        &format!("[apps.good1]\n[apps.bad1]\nport = {}\n", e.proxy_port),
    );
    let err = e.fails(&["apply", "-f", &bad_port, "--prune"]);
    assert!(err.contains("apps.bad1.port"), "{err}");
    let out = e.hangar(&["apply", "-f", &bad_port, "--json"]);
    assert_eq!(json_of(&stdout(&out))["field"], "apps.bad1.port");
    let typo = write(dir.path(), "b.toml", "[apps.good1]\nprot = 5000\n");
    let err = e.fails(&["apply", "-f", &typo]);
    assert!(err.contains("apps.good1.prot"), "{err}");
    let wrong_type = write(dir.path(), "c.toml", "[apps.good1]\nport = \"x\"\n");
    let out = e.hangar(&["apply", "-f", &wrong_type, "--json"]);
    assert!(!out.status.success());
    let err = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(err["field"], "apps.good1.port", "{err}");
    let two_same = write(
        dir.path(),
        "d.toml",
        "[apps.good1]\ndomain = \"x.example.test\"\n[apps.good2]\ndomain = \"x.example.test\"\n",
    );
    let err = e.fails(&["apply", "-f", &two_same]);
    assert!(err.contains("domain"), "{err}");
    let main = write(dir.path(), "e.toml", "[apps.main]\npinned = true\n");
    let err = e.fails(&["apply", "-f", &main]);
    assert!(err.contains("apps.main.name"), "{err}");
    let runtime = write(dir.path(), "f.toml", "[apps.keep1]\nruntime = \"nope\"\n");
    let err = e.fails(&["apply", "-f", &runtime]);
    assert!(err.contains("apps.keep1.runtime"), "{err}");
    // The program and the resources, by create's and edit's own rules, on a new app and on
    // one that exists.
    for (text, field) in [
        ("[apps.good1]\nnice = 40\n", "apps.good1.nice"),
        ("[apps.keep1]\nnice = -21\n", "apps.keep1.nice"),
        (
            "[apps.good1]\nmemory_max = \"1K\"\n",
            "apps.good1.memory_max",
        ),
        (
            "[apps.keep1]\nmemory_max = \"lots\"\n",
            "apps.keep1.memory_max",
        ),
        (
            "[apps.good1]\ncommand = { argv = [] }\n",
            "apps.good1.command",
        ),
        (
            "[apps.good1]\ncommand = { argv = [\"srv\"], health = \"up\" }\n",
            "apps.good1.command.health",
        ),
        (
            "[apps.keep1]\ncommand = { argv = [\"srv\", \"${NOT_A_VARIABLE_HERE}\"] }\n",
            "apps.keep1.command",
        ),
        (
            "[apps.good1]\ncommand = { program = \"x\" }\n",
            "apps.good1.command",
        ),
    ] {
        let f = write(dir.path(), "g.toml", text);
        let out = e.hangar(&["apply", "-f", &f, "--json"]);
        assert!(!out.status.success(), "{text}");
        let err = json_of(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(err["field"], field, "{text}: {err}");
    }
    let names = |l: Vec<Value>| -> Vec<String> {
        l.iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(e.list()), names(before), "nothing changed");
}

#[test]
fn bulk_verbs_report_each_app_and_fail_when_one_fails() {
    let e = TestEngine::start_with(
        r#"
[runtimes.broken]
command = ["sh", "-c", "echo cannot start >&2; exit 3"]
restart_limit = 1
"#,
    );
    for n in ["web1", "web2", "zed"] {
        e.ok(&["create", n]);
    }
    e.ok(&["create", "web3", "--runtime", "broken"]);

    // A glob: web1, web2 and the broken web3; zed is left alone.
    let out = e.hangar(&["start", "web*"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "one failed: {stdout}");
    assert!(stdout.contains("web1 is running"), "{stdout}");
    assert!(stdout.contains("web2 is running"), "{stdout}");
    assert!(stdout.contains("web3: start failed"), "{stdout}");
    assert!(stdout.contains("started 2 of 3 apps; 1 failed"), "{stdout}");
    assert!(
        stderr.contains("1 of 3 apps failed to start: web3"),
        "{stderr}"
    );
    assert_eq!(e.status("zed"), "stopped");

    // Rolling restart of what runs (main, web1, web2): each answers before the next.
    let before = (e.pid("web1"), e.pid("web2"));
    let out = e.ok(&["restart", "--all"]);
    assert!(out.contains("restarted 3 of 3 apps"), "{out}");
    assert!(!out.contains("zed") && !out.contains("web3"), "{out}");
    assert_ne!((e.pid("web1"), e.pid("web2")), before);

    // Filters: by status, and --json with the per-app results.
    let out = e.ok(&["stop", "--status", "running", "--json"]);
    let r = json_of(&out);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["ok"], 3, "{r}");
    assert_eq!(e.status("web1"), "stopped");
    let err = e.fails(&["stop", "--status", "sleeping"]);
    assert!(
        err.contains("--status \"sleeping\" is not a status"),
        "{err}"
    );
    let err = e.fails(&["start", "nosuch"]);
    assert!(err.contains("no app named \"nosuch\""), "{err}");
    let out = e.ok(&["start", "--runtime", "demo", "--status", "stopped", "zed"]);
    assert!(out.contains("zed is running"), "{out}");
    assert!(out.contains("started 1 of 1 apps"), "{out}");
}

/// A bulk start runs a few starts at once, yet prints one line per app in the order the apps
/// were selected (`list`'s: main, then by name), and then its summary.
#[test]
fn a_bulk_start_of_many_apps_prints_them_in_list_order() {
    // Each app leaves a mark, then becomes ready only once two apps have begun: started one at
    // a time, the first would wait out its start timeout and fail.
    let marks = tempfile::tempdir().expect("temp dir");
    let m = marks.path().display();
    let demo = demo_bin().display().to_string();
    let script = format!(
        "touch {m}/$$$$; while [ \"$$(ls {m} | wc -l)\" -lt 2 ]; do sleep 0.05; done; exec {demo} serve --port $$PORT"
    );
    let e = TestEngine::start_with(&format!(
        "[runtimes.together]\ncommand = [\"sh\", \"-c\", {script:?}]\nstart_timeout = 10\n"
    ));
    // Made out of name order: the lines follow the names, not the creates.
    let names = ["fern", "alder", "elm", "birch", "dogwood", "cedar"];
    for n in names {
        e.ok(&["create", n, "--runtime", "together"]);
    }
    let out = e.ok(&["start", "--all"]);
    let lines: Vec<&str> = out.lines().collect();
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    let expected: Vec<String> = std::iter::once("main")
        .chain(sorted)
        .map(|n| format!("{n} is running"))
        .collect();
    assert_eq!(lines.len(), expected.len() + 1, "{out}");
    for (line, start) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(start.as_str()),
            "{start:?} expected: {out}"
        );
    }
    assert_eq!(lines[expected.len()], "started 7 of 7 apps", "{out}");
    for n in names {
        assert_eq!(e.status(n), "running", "{n}");
    }
}

#[test]
fn logs_of_every_app_come_in_time_order_with_their_names() {
    let demo = demo_bin().display().to_string();
    let e = TestEngine::start_with(&format!(
        r#"
[runtimes.talky]
command = ["sh", "-c", "printf '%s-%s\\n' greeting ${{HANGAR_APP}}; exec \"$0\" serve --port ${{PORT}}", "{demo}"]
"#
    ));
    for n in ["la", "lb", "lc"] {
        e.ok(&["create", n, "--runtime", "talky"]);
    }
    // One after another, so their lines are in this order in time.
    for n in ["lc", "la", "lb"] {
        e.ok(&["start", n]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = e.ok(&["logs", "-n", "1000"]);
    assert!(!out.contains('\x1b'), "no colour without a terminal: {out}");
    let lines: Vec<(&str, &str)> = out
        .lines()
        .map(|l| {
            let (app, rest) = l
                .split_once(" | ")
                .unwrap_or_else(|| panic!("no prefix: {l}"));
            (app.trim(), rest)
        })
        .collect();
    let stamps: Vec<&str> = lines
        .iter()
        .map(|(_, r)| r.split(' ').next().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "in time order: {out}");
    let hellos: Vec<&str> = lines
        .iter()
        .filter(|(_, r)| r.contains("greeting-"))
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(hellos, ["lc", "la", "lb"], "{out}");
    assert!(lines.iter().any(|(a, _)| *a == "main"), "main's lines too");

    // --grep across apps, and the last N of all apps together.
    let out = e.ok(&["logs", "--grep", "greeting-"]);
    let apps: Vec<&str> = out
        .lines()
        .map(|l| l.split(" | ").next().unwrap().trim())
        .collect();
    assert_eq!(apps, ["lc", "la", "lb"], "{out}");
    let out = e.ok(&["logs", "-n", "2"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    // --json: one object a line.
    let out = e.ok(&["logs", "--grep", "greeting-", "--json"]);
    for l in out.lines() {
        let v = json_of(l);
        assert!(v["app"].is_string() && v["ts"].is_string(), "{v}");
    }
}

#[test]
fn env_files_and_edit_set_values_without_printing_them() {
    let e = TestEngine::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = write(
        dir.path(),
        "app.env",
        "# the shop's settings\n\
         export API_TOKEN=tok-123-secret\n\
         GREETING=\"hello \\\"world\\\"\"  # quoted\n\
         RAW='a $b #c'\n\
         \n\
         PLAIN=value with spaces # comment\n",
    );
    let out = e.ok(&[
        "create",
        "envy",
        "--env-file",
        &env,
        "--env",
        "PLAIN=override",
    ]);
    assert!(!out.contains("tok-123"), "{out}");
    let v = view(&e, "envy");
    assert_eq!(v["env"]["API_TOKEN"], "tok-123-secret");
    assert_eq!(v["env"]["GREETING"], "hello \"world\"");
    assert_eq!(v["env"]["RAW"], "a $b #c");
    assert_eq!(v["env"]["PLAIN"], "override", "--env wins over the file");

    // A bad file names its line and changes nothing.
    let bad = write(dir.path(), "bad.env", "OK=1\nPORT=80\n");
    let err = e.fails(&["create", "envy2", "--env-file", &bad]);
    assert!(err.contains("line 2") && err.contains("PORT"), "{err}");
    assert!(!e.listed("envy2"));

    // edit: every field of the panel's form; env keys are named, values never.
    let port = free_port().to_string();
    let out = e.ok(&[
        "edit",
        "envy",
        "--display-name",
        "Envy",
        "--port",
        &port,
        "--domain",
        "envy.example.test",
        "--pin",
        "--idle-timeout",
        "300",
        "--env",
        "NEW_ONE=fresh-secret",
        "--unset-env",
        "RAW",
        "--env-file",
        &env,
    ]);
    assert!(out.contains("edited envy"), "{out}");
    assert!(
        out.contains("env NEW_ONE: set") && out.contains("env RAW: removed"),
        "{out}"
    );
    assert!(
        !out.contains("fresh-secret") && !out.contains("tok-123"),
        "{out}"
    );
    let v = view(&e, "envy");
    assert_eq!(v["display_name"], "Envy");
    assert_eq!(v["port"].to_string(), port);
    assert_eq!(v["domain"], "envy.example.test");
    assert_eq!(v["pinned"], true);
    assert_eq!(v["idle_timeout"], 300);
    assert_eq!(v["env"]["NEW_ONE"], "fresh-secret");
    assert!(v["env"].get("RAW").is_none(), "{v}");
    assert_eq!(
        v["env"]["PLAIN"], "value with spaces",
        "the file's value again"
    );
    let out = e.ok(&["edit", "envy", "--domain", "", "--unpin", "--json"]);
    let r = json_of(&out);
    assert_eq!(r["name"], "envy");
    assert_eq!(view(&e, "envy")["domain"], Value::Null);
    // Nothing to change is a usage error (tests/it/verbs.rs).
    let out = e.hangar(&["edit", "envy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to change"));
    let err = e.fails(&["edit", "envy", "--port", &e.api_port.to_string()]);
    assert!(err.contains("port"), "{err}");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_verb_answers_json_and_one_error_shape() {
    let e = TestEngine::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let apps = write(dir.path(), "apps.toml", "[apps.j2]\n");
    let env = write(dir.path(), "j.env", "A=1\n");
    let verbs: Vec<Vec<String>> = [
        vec!["create", "j1", "--env-file", &env],
        vec!["list"],
        vec!["status", "j1"],
        vec!["edit", "j1", "--pin"],
        vec!["start", "j1"],
        vec!["restart", "j1"],
        vec!["stop", "j1"],
        vec!["apply", "-f", &apps, "--dry-run"],
        vec!["apply", "-f", &apps],
        vec!["dump"],
        vec!["upgrade", "j1"],
        vec!["backup", "j1"],
        vec!["backups"],
        vec!["export", "nginx"],
        vec!["open", "--no-browser"],
        vec!["monit", "--count", "1"],
        vec!["delete", "j2"],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect();
    for v in &verbs {
        let mut args: Vec<&str> = v.iter().map(String::as_str).collect();
        args.push("--json");
        let out = e.ok(&args);
        let parsed: Result<Value, _> = serde_json::from_str(&out);
        if parsed.is_err() {
            // A stream: one JSON value a line.
            for l in out.lines().filter(|l| !l.trim().is_empty()) {
                json_of(l);
            }
        }
    }
    let out = e.ok(&["logs", "j1", "--json"]);
    for l in out.lines() {
        json_of(l);
    }
    // Failures: the one shape on stdout, the line on stderr, exit status 1.
    for args in [
        vec!["status", "nosuch", "--json"],
        vec!["create", "Bad Name", "--json"],
        vec!["start", "nosuch", "--json"],
        vec!["edit", "j1", "--port", "80", "--json"],
        vec!["exec", "nosuch", "--json", "--", "true"],
    ] {
        let out = e.hangar(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = json_of(&stdout(&out));
        assert!(
            err["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{err}"
        );
        assert!(err.get("field").is_some(), "{err}");
    }
    let out = e.hangar(&["create", "Bad Name", "--json"]);
    assert_eq!(json_of(&stdout(&out))["field"], "name");
    // exec: the program's output is its own, as it is; a program that cannot be run is
    // Hangar's refusal, in the one shape, with a shell's status.
    let out = e.ok(&["exec", "j1", "--json", "--", "printenv", "HANGAR_APP"]);
    assert_eq!(out, "j1\n");
    let out = e.hangar(&["exec", "j1", "--json", "--", "no-such-program-here"]);
    assert_eq!(out.status.code(), Some(127));
    let err = json_of(&stdout(&out));
    assert_eq!(err["field"], "program", "{err}");
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-program-here")),
        "{err}"
    );
    let out = e.ok(&["kill", "--json"]);
    json_of(&out);
}

/// `hangar list | head -1`: a reader that goes away ends the CLI as a closed pipe ends other
/// programs (SIGPIPE, silently), never with Rust's "failed printing to stdout" panic; both the
/// line writers (`list`, `delete`), the streaming ones (`logs`) and those clap's own writers
/// make (`completions`, `man`) do.
#[test]
fn a_reader_that_goes_away_ends_the_cli_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let e = TestEngine::start();
    e.ok(&["create", "piped"]);
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["logs", "-n", "50"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["completions", "fish"],
        vec!["man"],
        vec!["delete", "piped"],
    ] {
        let mut child = hangar_cmd(e.home_path())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run hangar");
        // The reader is gone before hangar writes its first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for hangar");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        // 13: SIGPIPE, as `cat` ends when its reader goes.
        assert_eq!(out.status.signal(), Some(13), "{args:?}: {}", out.status);
    }
    assert!(!e.listed("piped"), "the verb itself was done");
}

#[test]
fn completions_for_three_shells_and_man_pages() {
    let home = tempfile::tempdir().expect("temp home");
    for shell in ["bash", "zsh", "fish"] {
        let out = hangar_cmd(home.path())
            .args(["completions", shell])
            .output()
            .expect("run hangar");
        assert!(out.status.success(), "{shell}");
        let text = stdout(&out);
        for verb in ["apply", "dump", "restart", "startup", "logs"] {
            assert!(text.contains(verb), "{shell} completes {verb}");
        }
    }
    let out = hangar_cmd(home.path())
        .arg("man")
        .output()
        .expect("run hangar");
    assert!(out.status.success());
    assert!(stdout(&out).contains(".TH hangar"), "a roff page");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = hangar_cmd(home.path())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run hangar");
    assert!(out.status.success());
    assert!(dir.path().join("hangar.1").is_file());
    assert!(dir.path().join("hangar-apply.1").is_file());
    // No engine was needed (none started).
    assert!(!home.path().join("engine.json").exists());
}

#[test]
fn the_startup_unit_passes_systemd_analyze_and_installs_per_user() {
    let home = tempfile::tempdir().expect("temp home");
    let out = hangar_cmd(home.path())
        .args(["startup", "--print"])
        .output()
        .expect("run hangar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = stdout(&out);
    assert!(
        unit.contains(&format!("--home \"{}\" serve", home.path().display())),
        "{unit}"
    );
    assert!(unit.contains("WantedBy=multi-user.target"), "{unit}");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hangar-test.service");
    std::fs::write(&file, &unit).unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze is installed (scripts/deps.sh: systemd)");
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // --user --no-enable: the unit in XDG_CONFIG_HOME/systemd/user; unstartup removes it.
    let config = tempfile::tempdir().expect("temp config");
    let out = hangar_cmd(home.path())
        .env("XDG_CONFIG_HOME", config.path())
        .args(["startup", "--user", "--no-enable", "--json"])
        .output()
        .expect("run hangar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&stdout(&out));
    let path = Path::new(r["path"].as_str().unwrap()).to_path_buf();
    assert!(path.starts_with(config.path().join("systemd/user")), "{r}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("WantedBy=default.target") && !text.contains("User="),
        "{text}"
    );
    // A user manager's checks need a runtime folder (none without a login session).
    let runtime = tempfile::tempdir().expect("temp runtime dir");
    let verify = std::process::Command::new("systemd-analyze")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["verify", "--user"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    assert!(
        verify.status.success(),
        "systemd-analyze verify --user: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let out = hangar_cmd(home.path())
        .env("XDG_CONFIG_HOME", config.path())
        .args(["unstartup", "--user", "--no-enable"])
        .output()
        .expect("run hangar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!path.exists());
}
