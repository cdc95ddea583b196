//! The shell's commands on Tauri's mock runtime (no display), around a real engine hosted
//! in-process on a temporary home, running real `hangar-demo` processes. Nothing else is mocked.
//!
//! Needs `hangar-demo` built beside this test (`cargo build -p hangar-demo`).

use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use hangar::engine::{AppView, CreateApp};
use hangar::run::supervisor::Status;
use hangar_desktop::backend::Backend;
use hangar_desktop::shell::{self, Options, Shell};
use hangar_desktop::tray::TrayProbe;
use hangar_desktop::{install, on_run_event, Launch, Windows};
use serde_json::{json, Value};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{AppHandle, Manager, WebviewWindow};

static ENV: Once = Once::new();

/// One HOME for the whole test binary (autostart writes `~/.config/autostart`), and the demo
/// runtime's binary.
fn init_env() -> PathBuf {
    let fake_home =
        std::env::temp_dir().join(format!("hangar-desktop-test-home-{}", std::process::id()));
    ENV.call_once(|| {
        std::fs::create_dir_all(&fake_home).unwrap();
        let demo = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|p| p.parent())
            .unwrap()
            .join("hangar-demo");
        assert!(
            demo.is_file(),
            "{} is missing: build it first with `cargo build -p hangar-demo`",
            demo.display()
        );
        // SAFETY: set once, before any test thread reads the environment (Once blocks them).
        unsafe {
            std::env::set_var("HOME", &fake_home);
            std::env::set_var("HANGAR_DEMO_BIN", &demo);
        }
    });
    fake_home
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Fixture {
    app: AppHandle<MockRuntime>,
    main: WebviewWindow<MockRuntime>,
    proxy_port: u16,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The shell on the mock runtime, its run loop on a thread of its own (setup runs there, as
    /// in the real app), with the real run-event handler.
    fn new() -> Fixture {
        init_env();
        let dir = tempfile::tempdir().unwrap();
        let proxy_port = free_port();
        std::fs::write(
            dir.path().join("hangar.toml"),
            format!("proxy_port = {proxy_port}\napi_port = {}\n", free_port()),
        )
        .unwrap();
        let launch = Launch {
            home: hangar::base::home::Home::at(dir.path()),
            overrides: Default::default(),
            options: Options {
                hidden: false,
                release_after: Duration::from_secs(300),
                builtin_ui: true,
            },
            tray: TrayProbe {
                available: false,
                why: "the mock runtime has no tray".into(),
            },
            windows: Windows::Here,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let builder = mock_builder()
                .plugin(
                    tauri_plugin_autostart::Builder::new()
                        .app_name("Hangar")
                        .args(["--hidden"])
                        .build(),
                )
                .plugin(tauri_plugin_notification::init());
            let app = install(builder, launch)
                .build(tauri::generate_context!("../tauri.conf.json"))
                .expect("the shell builds on the mock runtime");
            tx.send(app.handle().clone()).unwrap();
            app.run_return(on_run_event);
        });
        let app = rx.recv().unwrap();
        // setup opens the main window from a task; wait for it.
        let main = wait_for(
            || app.get_webview_window(shell::MAIN_WINDOW),
            "the main window",
        );
        Fixture {
            app,
            main,
            proxy_port,
            _dir: dir,
        }
    }

    fn shell(&self) -> Arc<Shell> {
        self.app.state::<Arc<Shell>>().inner().clone()
    }

    fn engine(&self) -> Arc<hangar::engine::Engine> {
        match &self.shell().backend {
            Backend::Local(l) => l.engine.clone(),
            Backend::Remote(_) => panic!("the fixture hosts its engine"),
        }
    }

    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        invoke_on(&self.main, cmd, args)
    }

    /// What a click on the tray entry `id` does (the native menu's event handler calls this).
    fn tray_click(&self, id: &str) -> Result<(), String> {
        tauri::async_runtime::block_on(shell::tray_actions::run_action(&self.app, id))
    }

    fn create(&self, name: &str) {
        let e = self.engine();
        tauri::async_runtime::block_on(e.create(CreateApp {
            name: name.into(),
            ..Default::default()
        }))
        .unwrap();
    }

    fn app_view(&self, name: &str) -> AppView {
        let apps: Vec<AppView> =
            serde_json::from_value(self.invoke("list_apps", json!({})).unwrap()).unwrap();
        apps.into_iter().find(|a| a.name == name).unwrap()
    }
}

impl Drop for Fixture {
    /// Every test ends with a quit, so no app process outlives it. (The mock runtime cannot
    /// exit: its `request_exit` panics in the quitting task after every app is down.)
    fn drop(&mut self) {
        let sh = self.shell();
        shell::quit::begin_quit(&self.app);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !sh.may_exit() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn invoke_on(w: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        w,
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>, what: &str) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

fn http_get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn shell_info_lists_and_logs() {
    let f = Fixture::new();
    let info = f.invoke("shell_info", json!({})).unwrap();
    assert_eq!(info["mode"], "in-process");
    assert_eq!(info["tray"]["available"], false);
    assert_eq!(info["ui"]["kind"], "builtin");
    assert_eq!(info["proxy_port"], f.proxy_port);

    f.create("blog");
    let apps = f.invoke("list_apps", json!({})).unwrap();
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"main") && names.contains(&"blog"),
        "{names:?}"
    );

    // Start from the window's command: running, and the proxy answers for it.
    let v = f.invoke("start_app", json!({ "name": "blog" })).unwrap();
    assert_eq!(v["status"], "running", "{v}");
    let (status, _) = http_get(&format!(
        "http://127.0.0.1:{}/_app/blog/api/info",
        f.proxy_port
    ));
    assert_eq!(status, 200);

    // A line made by requesting the app is in its log.
    let marker = format!("marker{}", std::process::id());
    http_get(&format!(
        "http://127.0.0.1:{}/_app/blog/api/echo?{marker}",
        f.proxy_port
    ));
    let found = wait_for(
        || {
            let lines = f
                .invoke("log_tail", json!({ "name": "blog", "n": 200 }))
                .unwrap();
            lines
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["text"].as_str().unwrap_or("").contains("/api/echo"))
                .then_some(true)
        },
        "the request's log line",
    );
    assert!(found);

    let v = f.invoke("stop_app", json!({ "name": "blog" })).unwrap();
    assert_eq!(v["status"], "stopped");

    // Errors are the engine's sentences.
    let e = f
        .invoke("start_app", json!({ "name": "nope" }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("no app named \"nope\""), "{e}");
}

#[test]
fn log_windows_are_one_per_app_and_reused() {
    let f = Fixture::new();
    f.create("shop");
    let label = f.invoke("open_logs", json!({ "name": "shop" })).unwrap();
    assert_eq!(label, "logs-shop");
    let w = f.app.get_webview_window("logs-shop").expect("a log window");
    let count = f.app.webview_windows().len();
    assert_eq!(
        f.invoke("open_logs", json!({ "name": "shop" })).unwrap(),
        "logs-shop"
    );
    assert_eq!(
        f.app.webview_windows().len(),
        count,
        "reused, not a second window"
    );
    assert_eq!(
        f.invoke("open_logs", json!({ "name": "main" })).unwrap(),
        "logs-main"
    );
    assert_eq!(f.app.webview_windows().len(), count + 1);

    // No window for an app that does not exist (and no odd label from a hostile name).
    let e = f
        .invoke("open_logs", json!({ "name": "../x" }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("no app named"), "{e}");
    assert_eq!(f.app.webview_windows().len(), count + 1);

    // A live subscription belongs to its window and ends with it.
    let sh = f.shell();
    invoke_on(
        &w,
        "follow_logs",
        json!({ "name": "shop", "onLines": "__CHANNEL__:7" }),
    )
    .unwrap();
    assert_eq!(shell::windows::log_sub_count(&sh), 1);
    // A reload subscribes again: still one.
    invoke_on(
        &w,
        "follow_logs",
        json!({ "name": "shop", "onLines": "__CHANNEL__:8" }),
    )
    .unwrap();
    assert_eq!(shell::windows::log_sub_count(&sh), 1);
    shell::windows::window_gone(&sh, "logs-shop");
    wait_for(
        || (shell::windows::log_sub_count(&sh) == 0).then_some(()),
        "the subscription to end",
    );
}

#[test]
fn tray_model_and_actions_follow_the_engine() {
    let f = Fixture::new();
    f.create("wiki");
    let model = |f: &Fixture| f.invoke("tray_model", json!({})).unwrap().to_string();
    // The menu follows the engine's events (debounced), not a poll of ours. A new on-visit app
    // waits for its first visit: asleep.
    wait_for(
        || model(&f).contains("wiki — asleep").then_some(()),
        "wiki in the tray menu",
    );
    f.tray_click("start:wiki").unwrap();
    wait_for(
        || model(&f).contains("wiki — running").then_some(()),
        "wiki running in the tray",
    );
    assert_eq!(f.app_view("wiki").status, Status::Running);
    f.tray_click("stop-all").unwrap();
    wait_for(
        || (!model(&f).contains("— running")).then_some(()),
        "nothing running in the tray",
    );
    assert_eq!(f.app_view("wiki").status, Status::Stopped);
    assert_eq!(f.app_view("main").status, Status::Stopped);
    // Stopped by the operator (here from the tray): stopped, not asleep (the menu follows the
    // engine's events, debounced: wait for it as above).
    wait_for(
        || model(&f).contains("wiki — stopped").then_some(()),
        "wiki stopped (not asleep) in the tray",
    );
    f.tray_click("start-all").unwrap();
    assert_eq!(f.app_view("wiki").status, Status::Running);
    assert_eq!(f.app_view("main").status, Status::Running);

    // The fallback page asks the engine's status rules; its capability lets it.
    assert_eq!(
        f.invoke("status_rules", json!({})).unwrap(),
        serde_json::to_value(Status::ALL.map(Status::rules)).unwrap()
    );

    let e = f.tray_click("launch:wiki").unwrap_err();
    assert!(e.contains("no tray action"), "{e}");
    f.tray_click("stop-all").unwrap();
}

#[test]
fn start_at_login_is_off_by_default_and_switchable() {
    let fake_home = init_env();
    let f = Fixture::new();
    let entry = fake_home.join(".config/autostart/Hangar.desktop");
    assert_eq!(f.invoke("get_autostart", json!({})).unwrap(), false);
    assert!(!entry.exists());
    assert_eq!(
        f.invoke("set_autostart", json!({ "enabled": true }))
            .unwrap(),
        true
    );
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("--hidden"), "{text}");
    let m = f.invoke("tray_model", json!({})).unwrap().to_string();
    assert!(m.contains(r#""checked":true"#), "{m}");
    f.tray_click("autostart").unwrap();
    assert_eq!(f.invoke("get_autostart", json!({})).unwrap(), false);
    assert!(!entry.exists());
}

#[test]
fn closing_hides_with_a_tray_and_quits_without_one_stopping_every_app() {
    let f = Fixture::new();
    f.create("cms");
    f.invoke("start_app", json!({ "name": "cms" })).unwrap();
    let main_pid = wait_for(|| f.app_view("main").pid, "the main app's pid");
    let cms_pid = f.app_view("cms").pid.unwrap();
    let sh = f.shell();

    // With a tray: the close (through the run loop, as a window manager's) is turned into a
    // hide; nothing stops.
    sh.set_tray_probe(TrayProbe {
        available: true,
        why: "test".into(),
    });
    assert_eq!(
        f.invoke("shell_info", json!({})).unwrap()["main_window"],
        "visible"
    );
    f.main.close().unwrap();
    wait_for(
        || (f.invoke("shell_info", json!({})).unwrap()["main_window"] == "hidden").then_some(()),
        "the main window to be hidden",
    );
    assert!(!sh.is_quitting());
    assert!(pid_alive(cms_pid) && pid_alive(main_pid));
    let (status, _) = http_get(&format!(
        "http://127.0.0.1:{}/_app/cms/api/info",
        f.proxy_port
    ));
    assert_eq!(status, 200, "the proxy keeps serving");
    // "Open Hangar" brings it back.
    f.tray_click("open").unwrap();
    assert_eq!(
        f.invoke("shell_info", json!({})).unwrap()["main_window"],
        "visible"
    );

    // The tray goes (a panel quits) while the window is hidden: the window comes back, as
    // nothing else could bring it.
    f.main.close().unwrap();
    wait_for(
        || (f.invoke("shell_info", json!({})).unwrap()["main_window"] == "hidden").then_some(()),
        "the main window to be hidden again",
    );
    shell::tray_follow::tray_changed(
        &f.app,
        TrayProbe {
            available: false,
            why: "test: the panel quit".into(),
        },
    );
    wait_for(
        || (f.invoke("shell_info", json!({})).unwrap()["main_window"] == "visible").then_some(()),
        "the main window to come back when the tray went",
    );

    // Without one: closing quits, after stopping every app.
    f.main.close().unwrap();
    wait_for(|| sh.is_quitting().then_some(()), "closing to quit");
    wait_for(|| sh.may_exit().then_some(()), "the quit to finish");
    assert!(!pid_alive(cms_pid), "cms ({cms_pid}) is still running");
    assert!(!pid_alive(main_pid), "main ({main_pid}) is still running");
    // What the operator wanted is kept: both come back with the next start.
    let m = f.invoke("tray_model", json!({})).unwrap().to_string();
    assert!(m.contains("Quitting"), "{m}");
    // A second quit is a no-op, and actions are refused while quitting.
    shell::quit::begin_quit(&f.app);
    let e = f.tray_click("start:cms").unwrap_err();
    assert!(e.contains("quitting"), "{e}");
}
