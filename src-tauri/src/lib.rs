//! `hangar-desktop`: the Tauri shell around the same engine as `hangar serve`. It hosts the
//! engine in-process (or attaches to one already running on the home), owns the tray and the
//! windows, and hands the webview what it needs to reach the engine. No engine logic lives here.
//!
//! Map: `backend` (the engine, hosted or attached), `menu_model` (the tray menu as a pure
//! function), `notice` (when to notify), `tray` (native menu, tray detection), `shell` (the state
//! the shell's parts share, and one child module a job: windows, webview, release, tray icon,
//! following the tray and the engine, quit), `commands` (what the windows may call), `window_proc`
//! (the windows in a child process, so the tray process never loads WebKit), `lean` (less memory
//! in the tray: no GL, library pages given back, no idle WebKit network process).

pub mod backend;
pub mod commands;
pub mod lean;
pub mod menu_model;
pub mod notice;
pub mod shell;
pub mod tray;
pub mod window_proc;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hangar::base::home::Home;
use hangar::engine::Overrides;
use tauri::{AppHandle, Manager, RunEvent, Runtime, WindowEvent};

use crate::backend::Backend;
use crate::shell::MAIN_WINDOW;
use crate::shell::{Options, Role, Shell};
use crate::window_proc::{HostFacts, HostLink, Spawn, WindowProcess};

#[derive(Debug, Parser)]
#[command(
    name = "hangar-desktop",
    version,
    about = "Hangar's desktop app: the engine with a window and a tray icon. Without a display, run `hangar serve` instead."
)]
pub struct Args {
    /// The home folder (default: the OS data folder's `hangar`).
    #[arg(long, env = "HANGAR_HOME")]
    pub home: Option<PathBuf>,
    /// Start in the tray, without opening the window (ignored when there is no tray).
    #[arg(long)]
    pub hidden: bool,
    /// Seconds the main window stays hidden before its webview is released to save memory.
    #[arg(long, env = "HANGAR_RELEASE_AFTER", default_value_t = 300)]
    pub release_after: u64,
    /// Use the pages built into the shell even when the engine serves the control panel.
    #[arg(
        long,
        env = "HANGAR_BUILTIN_UI",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub builtin_ui: bool,
    #[arg(long)]
    pub proxy_port: Option<u16>,
    #[arg(long)]
    pub api_port: Option<u16>,
    /// Keep the windows in this process instead of a child process (the tray then keeps what
    /// WebKit loaded after a window was open: more memory, one process fewer).
    #[arg(
        long,
        env = "HANGAR_SINGLE_PROCESS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub single_process: bool,
    /// Internal: be the window process of the desktop app whose facts follow (JSON), reading
    /// its requests on stdin.
    #[arg(long = "window-host", hide = true, value_name = "JSON")]
    pub window_host: Option<String>,
    /// Internal: be a window process (with `--window-host`).
    #[arg(long, hide = true, requires = "window_host")]
    pub window: bool,
}

/// Where the windows of this process live.
#[derive(Debug, Clone)]
pub enum Windows {
    /// Here, with the engine and the tray (`--single-process`, the tests).
    Here,
    /// In a child process started as this (the default).
    InChild(Spawn),
    /// This is the window process of a host with these facts (`--window`).
    ForHost(HostFacts),
}

/// What `setup` needs to make the shell.
pub struct Launch {
    pub home: Home,
    pub overrides: Overrides,
    pub options: Options,
    pub tray: tray::TrayProbe,
    pub windows: Windows,
}

/// The commands, window handling and setup, on any runtime (the real one, or the mock one in
/// tests). Plugins are added by the caller.
pub fn install<R: Runtime>(builder: tauri::Builder<R>, launch: Launch) -> tauri::Builder<R> {
    builder
        .invoke_handler(tauri::generate_handler![
            commands::shell_info,
            commands::list_apps,
            commands::start_app,
            commands::stop_app,
            commands::open_logs,
            commands::log_tail,
            commands::follow_logs,
            commands::get_autostart,
            commands::set_autostart,
            commands::tray_model,
            commands::status_rules,
            commands::show_main,
            commands::quit,
        ])
        .setup(move |app| {
            let Launch {
                home,
                overrides,
                options,
                tray,
                windows,
            } = launch;
            let backend = match &windows {
                // The window process never hosts an engine: its host does.
                Windows::ForHost(_) => tauri::async_runtime::block_on(Backend::attach(home))?,
                _ => {
                    tracing::info!(tray = tray.available, "tray: {}", tray.why);
                    tauri::async_runtime::block_on(Backend::open(home, overrides))?
                }
            };
            // The engine's own control panel (its API origin exactly, no other) may use the
            // shell's windows and tray actions: nothing it could not already do through the API.
            app.add_capability(
                tauri::ipc::CapabilityBuilder::new("engine-ui")
                    .remote(format!("http://127.0.0.1:{}/*", backend.api_port()))
                    .local(false)
                    .windows([MAIN_WINDOW, "logs-*"])
                    .permission("core:event:default")
                    .permission("allow-shell-info")
                    .permission("allow-open-logs")
                    .permission("allow-show-main")
                    .permission("allow-tray-model")
                    .permission("allow-quit"),
            )?;
            let hidden = options.hidden;
            let host_facts = HostFacts {
                mode: backend.mode().to_string(),
                pid: std::process::id(),
                tray: tray.clone(),
            };
            let shell = Shell::new(backend, options, tray);
            app.manage(shell.clone());
            shell.set_autostart_state(shell::autostart::autostart_enabled(app.handle()));
            match windows {
                Windows::Here => shell.set_role(Role::Whole),
                Windows::InChild(spawn) => {
                    let (wp, events) = WindowProcess::new(
                        spawn,
                        host_facts,
                        tauri::async_runtime::handle().inner().clone(),
                    );
                    let wp = Arc::new(wp);
                    shell.set_role(Role::Host(wp.clone()));
                    let handle = app.handle().clone();
                    tauri::async_runtime::spawn(shell::window_link::host_loop(handle, wp, events));
                }
                Windows::ForHost(facts) => {
                    shell.set_role(Role::Window(Arc::new(HostLink::new(facts))));
                    // No tray here: its host has it.
                    shell::engine_follow::start(app.handle());
                    let handle = app.handle().clone();
                    tauri::async_runtime::spawn(shell::window_link::window_loop(handle));
                    return Ok(());
                }
            }
            shell::tray_follow::start(app.handle());
            shell::engine_follow::start(app.handle());
            shell::tray_follow::follow_tray(app.handle());
            // No tray yet, but one may come (the panel may start after Hangar at login).
            let tray_may_come = hidden && !shell.tray_available() && tray::follows_the_desktop();
            if let Some(wp) = shell.window_process() {
                // This process never shows a webview: what starting touched goes back now.
                shell::release::shed_when_no_webview(app.handle());
                if tray_may_come {
                    shell::tray_follow::show_main_unless_a_tray_comes(app.handle());
                } else if !hidden || !shell.tray_available() {
                    wp.show()?;
                }
            } else if hidden && shell.tray_available() {
                // In the tray from the start: what starting touched goes back to the system.
                shell::release::shed_when_no_webview(app.handle());
            } else if tray_may_come {
                shell::tray_follow::show_main_unless_a_tray_comes(app.handle());
            } else {
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = shell::windows::show_main(&handle).await {
                        tracing::error!("cannot open the main window: {e}");
                    }
                });
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move { shell::quit::quit_on_signal(handle).await });
            Ok(())
        })
}

/// The app's run loop events: close-to-tray, window bookkeeping, and no exit before the apps
/// are down.
pub fn on_run_event<R: Runtime>(app: &AppHandle<R>, event: RunEvent) {
    let Some(sh) = app.try_state::<Arc<Shell>>().map(|s| s.inner().clone()) else {
        return;
    };
    match event {
        RunEvent::ExitRequested { code, api, .. } => {
            if sh.may_exit() {
                return;
            }
            api.prevent_exit();
            if let Some(link) = sh.host_link() {
                // The window process's last window went: the host decides whether it goes.
                link.idle();
                return;
            }
            if code.is_none() && sh.tray_available() && !sh.is_quitting() {
                // The last window went (its webview released): keep serving in the tray.
                return;
            }
            shell::quit::begin_quit(app);
        }
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::CloseRequested { api, .. },
            ..
        } if label == MAIN_WINDOW => {
            // Not a match guard: asking hides the window or begins the quit.
            #[allow(clippy::collapsible_match)]
            if shell::windows::main_close_requested(app) {
                api.prevent_close();
            }
        }
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::Destroyed,
            ..
        } => {
            shell::windows::window_gone(&sh, &label);
            shell::release::shed_when_no_webview(app);
        }
        _ => {}
    }
}

/// One running desktop app per home: the D-Bus name carries a hash of the home's path.
pub fn instance_id(home: &Home) -> String {
    // FNV-1a: stable across builds and versions.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in home.root().as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("dev.hangar.desktop.home_{h:016x}")
}

pub fn main_entry() -> i32 {
    // First, while this is the only thread: GTK and WebKit read these at their start.
    let mut env_defaults = lean::apply_env_defaults(lean::ENV_DEFAULTS);
    let args = Args::parse();
    // Still one thread. The process that will show no window (windows in a child) needs no GL.
    let exe = std::env::current_exe();
    let host_env = if args.window || args.single_process || exe.is_err() {
        Vec::new()
    } else {
        lean::apply_env_defaults(lean::HOST_ENV_DEFAULTS)
    };
    env_defaults.extend(host_env.iter().copied());
    hangar::init_tracing();
    if !args.window {
        // The engine and its proxy live here (the window process only shows pages).
        hangar::base::process::raise_open_files_limit();
    }
    for (k, v) in &env_defaults {
        tracing::debug!("{k}={v} (a default; set it to change)");
    }
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!("hangar-desktop: no display (DISPLAY and WAYLAND_DISPLAY are unset); run the engine headless with `hangar serve`");
        return 2;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hangar-desktop: cannot start the async runtime: {e}");
            return 1;
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());
    let home = match Home::resolve(args.home.clone()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("hangar-desktop: {e}");
            return 1;
        }
    };
    let windows = match (&args.window_host, args.window) {
        (Some(facts), true) => match serde_json::from_str::<HostFacts>(facts) {
            Ok(f) => Windows::ForHost(f),
            Err(e) => {
                eprintln!("hangar-desktop: --window-host is not the host's facts: {e}");
                return 2;
            }
        },
        _ if args.single_process => Windows::Here,
        _ => match exe {
            Ok(exe) => Windows::InChild(Spawn {
                exe,
                home: home.root().to_path_buf(),
                release_after: Duration::from_secs(args.release_after),
                builtin_ui: args.builtin_ui,
                unset_env: host_env.iter().map(|(k, _)| *k).collect(),
            }),
            Err(e) => {
                tracing::warn!("cannot find this program to start windows from ({e}): keeping them in this process");
                Windows::Here
            }
        },
    };
    let tray = match &windows {
        Windows::ForHost(f) => f.tray.clone(),
        _ => tray::probe(),
    };
    let window_process = matches!(windows, Windows::ForHost(_));
    let launch = Launch {
        home: home.clone(),
        overrides: Overrides {
            proxy_port: args.proxy_port,
            api_port: args.api_port,
        },
        options: Options {
            hidden: args.hidden,
            release_after: Duration::from_secs(args.release_after),
            builtin_ui: args.builtin_ui,
        },
        tray,
        windows,
    };
    let mut builder = tauri::Builder::default();
    if !window_process {
        builder = builder
            // First: a second launch hands over to the first before anything else starts.
            .plugin(
                tauri_plugin_single_instance::Builder::new()
                    .dbus_id(instance_id(&home))
                    .callback(|app, _argv, _cwd| {
                        tracing::info!("launched again: showing the window");
                        let app = app.clone();
                        tauri::async_runtime::spawn(async move {
                            let _ = shell::windows::show_main(&app).await;
                        });
                    })
                    .build(),
            )
            .plugin(tauri_plugin_notification::init());
    }
    let builder = builder.plugin(
        tauri_plugin_autostart::Builder::new()
            .app_name("Hangar")
            .args(shell::autostart::autostart_args(&args))
            .build(),
    );
    let app = match install(builder, launch).build(tauri::generate_context!("../tauri.conf.json")) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("hangar-desktop: {e}");
            return 1;
        }
    };
    app.run_return(on_run_event)
}
