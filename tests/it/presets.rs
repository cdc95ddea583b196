//! The presets for real apps from the registries, each run through Hangar with `preset = …`
//! and the program's folder on the runtime's PATH, nothing else written: Datasette (PyPI,
//! scripts/install-datasette.sh) and Node-RED (npm, scripts/install-node-red.sh), each used
//! under `/_app/<name>/` through the proxy as its own client would. Fails when either is
//! missing, never skips.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The program an install script printed (its env override, or its default cache path).
fn installed(var: &str, default: &str, script: &str) -> PathBuf {
    let p = match std::env::var(var) {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(default),
    };
    assert!(
        p.is_file(),
        "{} is missing: run {script} (or set {var} to the program it prints)",
        p.display()
    );
    p
}

/// `[runtimes.NAME] preset = "…"` with the program's folder first on the runtime's PATH.
fn preset_runtime(name: &str, preset: &str, program: &Path) -> String {
    let dir = program.parent().unwrap().display().to_string();
    format!("[runtimes.{name}]\npreset = \"{preset}\"\nenv = {{ PATH = \"{dir}:${{PATH}}\" }}\n")
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[test]
fn datasette_runs_from_its_preset_under_its_prefix() {
    let bin = installed(
        "HANGAR_TEST_DATASETTE",
        ".cache/hangar/venv-datasette/bin/datasette",
        "scripts/install-datasette.sh",
    );
    let e = TestEngine::start_with(&preset_runtime("datasette", "datasette", &bin));
    e.ok(&["create", "ds", "--runtime", "datasette"]);
    let c = client();
    // The first visit starts it; it made its database in the app's folder.
    let r = c.get(e.proxy_url("/_app/ds/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let home = r.text().unwrap();
    assert!(home.contains("href=\"/_app/ds/data\""), "{home}");
    assert!(e.home_path().join("apps/ds/data.db").is_file());
    // Confined, with nothing added: the venv and the interpreter it links to are read.
    assert!(
        e.log_text("ds").contains("confined by Landlock"),
        "{}",
        e.log_text("ds")
    );
    // What its own JSON client asks: a query through the prefixed API.
    let r = c
        .get(e.proxy_url("/_app/ds/data.json?sql=select+6*7+as+answer&_shape=array"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rows: Value = r.json().unwrap();
    assert_eq!(rows[0]["answer"], 42);
    // Its secret is the app's key, given in the environment (not on the command line).
    let pid = e.pid("ds");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let key = e.hangar(&["exec", "ds", "--", "sh", "-c", "printf %s \"$APP_KEY\""]);
    let key = String::from_utf8_lossy(&key.stdout).into_owned();
    assert_eq!(key.len(), 64);
    let has = |hay: &[u8]| hay.windows(key.len()).any(|w| w == key.as_bytes());
    assert!(has(&environ) && !has(&cmdline));
}

#[test]
fn node_red_runs_from_its_preset_with_its_editor_socket_under_its_prefix() {
    use tokio_tungstenite::tungstenite::{connect, Message};
    let bin = installed(
        "HANGAR_TEST_NODE_RED",
        ".cache/hangar/node-red/4.1.8/node_modules/.bin/node-red",
        "scripts/install-node-red.sh",
    );
    let e = TestEngine::start_with(&preset_runtime("nodered", "node-red", &bin));
    e.ok(&["create", "flows", "--runtime", "nodered"]);
    let c = client();
    // The editor, started by the visit, under the prefix it keeps.
    let r = c.get(e.proxy_url("/_app/flows/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("Node-RED"));
    // Confined, with nothing added: its node_modules tree and the `node` it names are read.
    assert!(
        e.log_text("flows").contains("confined by Landlock"),
        "{}",
        e.log_text("flows")
    );
    // What the editor asks first: its settings, which know the prefix.
    let settings: Value = c
        .get(e.proxy_url("/_app/flows/settings"))
        .header("Node-RED-API-Version", "v2")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(settings["httpNodeRoot"], "/_app/flows/", "{settings}");

    // The editor's WebSocket, through the proxy, hears of a deploy made through the admin API.
    let url = format!("ws://127.0.0.1:{}/_app/flows/comms", e.proxy_port);
    let (mut ws, resp) = connect(url).expect("the comms WebSocket through the proxy");
    assert_eq!(resp.status().as_u16(), 101);
    ws.send(Message::text(
        json!({"subscribe": "notification/#"}).to_string(),
    ))
    .unwrap();
    let flows = json!([
        {"id": "t1", "type": "tab", "label": "Hangar"},
        {"id": "in1", "type": "http in", "z": "t1", "url": "/hello", "method": "get", "wires": [["fn1"]]},
        {"id": "fn1", "type": "change", "z": "t1", "rules": [{"t": "set", "p": "payload", "pt": "msg", "to": "hello from node-red", "tot": "str"}], "wires": [["out1"]]},
        {"id": "out1", "type": "http response", "z": "t1", "wires": []}
    ]);
    let r = c
        .post(e.proxy_url("/_app/flows/flows"))
        .header("Node-RED-Deployment-Type", "full")
        .json(&flows)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "{:?}", r.text());
    let mut heard = false;
    for _ in 0..20 {
        match ws.read().expect("a message on comms") {
            Message::Text(t) if t.contains("notification/runtime-deploy") => {
                heard = true;
                break;
            }
            _ => continue,
        }
    }
    assert!(heard, "the editor's socket heard of the deploy");
    // The deployed flow answers under the prefix too (httpNodeRoot).
    // Node-RED announces the deploy on its socket a moment before the new flow's HTTP route is
    // in place: ask until it answers (bounded).
    let mut r = c.get(e.proxy_url("/_app/flows/hello")).send().unwrap();
    for _ in 0..50 {
        if r.status().as_u16() != 404 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        r = c.get(e.proxy_url("/_app/flows/hello")).send().unwrap();
    }
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().unwrap(), "hello from node-red");
    // Its flows live in the app's data folder.
    assert!(std::fs::read_dir(e.home_path().join("apps/flows"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|f| f.file_name().to_string_lossy().starts_with("flows")));
    // A stop with the editor's socket open ends it within the stop timeout.
    e.ok(&["stop", "flows"]);
    assert_eq!(e.status("flows"), "stopped");
}
