//! `hangar-desktop`: the Tauri shell around the same engine as `hangar serve`. It hosts the
//! engine in-process (or attaches to one already running on the home), owns the tray and the
//! windows, and hands the webview what it needs to reach the engine. No engine logic lives here.
//!
//! Map: `backend` (the engine, hosted or attached), `menu_model` (the tray menu as a pure
//! function), `notice` (when to notify), `tray` (native menu, tray detection), `shell` (windows,
//! close-to-tray, webview release, quit), `commands` (what the windows may call), `lean` (less
//! memory in the tray: no GL, no idle WebKit network process).

pub mod backend;
pub mod commands;
pub mod lean;
pub mod menu_model;
pub mod notice;
pub mod shell;
pub mod tray;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hangar::engine::Overrides;
use hangar::home::Home;
use tauri::{AppHandle, Manager, RunEvent, Runtime, WindowEvent};

use crate::backend::Backend;
use crate::shell::{Options, Shell, MAIN_WINDOW};

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
}

/// What `setup` needs to make the shell.
pub struct Launch {
    pub home: Home,
    pub overrides: Overrides,
    pub options: Options,
    pub tray: tray::TrayProbe,
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
            commands::show_main,
            commands::quit,
        ])
        .setup(move |app| {
            let Launch {
                home,
                overrides,
                options,
                tray,
            } = launch;
            tracing::info!(tray = tray.available, "tray: {}", tray.why);
            let backend = tauri::async_runtime::block_on(Backend::open(home, overrides))?;
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
            let shell = Shell::new(backend, options, tray);
            app.manage(shell.clone());
            shell.set_autostart_state(autostart_enabled(app.handle()));
            shell::start(app.handle());
            if hidden && shell.tray_available() {
                // In the tray from the start: what starting touched goes back to the system.
                shell::shed_when_no_webview(app.handle());
            } else {
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = shell::show_main(&handle).await {
                        tracing::error!("cannot open the main window: {e}");
                    }
                });
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move { quit_on_signal(handle).await });
            Ok(())
        })
}

/// SIGTERM, SIGINT or SIGHUP (logout, `kill`) quit as the tray's Quit does: every app stopped.
async fn quit_on_signal<R: Runtime>(app: AppHandle<R>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
    tracing::info!("signal received: quitting");
    shell::begin_quit(&app);
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
            if code.is_none() && sh.tray_available() && !sh.is_quitting() {
                // The last window went (its webview released): keep serving in the tray.
                return;
            }
            shell::begin_quit(app);
        }
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::CloseRequested { api, .. },
            ..
        } if label == MAIN_WINDOW => {
            // Not a match guard: asking hides the window or begins the quit.
            #[allow(clippy::collapsible_match)]
            if shell::main_close_requested(app) {
                api.prevent_close();
            }
        }
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::Destroyed,
            ..
        } => {
            shell::window_gone(&sh, &label);
            shell::shed_when_no_webview(app);
        }
        _ => {}
    }
}

pub fn autostart_enabled<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.try_state::<tauri_plugin_autostart::AutoLaunchManager>()
        .and_then(|m| m.is_enabled().ok())
        .unwrap_or(false)
}

/// Turn start-at-login on or off; returns the setting as it now is.
pub fn set_autostart<R: Runtime>(app: &AppHandle<R>, on: bool) -> Result<bool, String> {
    let m = app
        .try_state::<tauri_plugin_autostart::AutoLaunchManager>()
        .ok_or("start at login is not available here")?;
    let r = if on { m.enable() } else { m.disable() };
    r.map_err(|e| format!("cannot change start at login: {e}"))?;
    let now = m.is_enabled().unwrap_or(on);
    if let Some(sh) = app.try_state::<Arc<Shell>>() {
        sh.set_autostart_state(now);
    }
    shell::refresh_tray(app);
    Ok(now)
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

/// The autostart entry's arguments: start in the tray, on this home when one was given.
fn autostart_args(args: &Args) -> Vec<String> {
    let mut v = vec!["--hidden".to_string()];
    if let Some(h) = &args.home {
        v.push("--home".into());
        v.push(h.display().to_string());
    }
    v
}

pub fn main_entry() -> i32 {
    // First, while this is the only thread: GTK and WebKit read these at their start.
    let env_defaults = lean::apply_env_defaults();
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("HANGAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
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
        tray: tray::probe(),
    };
    let builder = tauri::Builder::default()
        // First: a second launch hands over to the first before anything else starts.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(instance_id(&home))
                .callback(|app, _argv, _cwd| {
                    tracing::info!("launched again: showing the window");
                    let app = app.clone();
                    tauri::async_runtime::spawn(async move {
                        let _ = shell::show_main(&app).await;
                    });
                })
                .build(),
        )
        .plugin(tauri_plugin_notification::init())
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name("Hangar")
                .args(autostart_args(&args))
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
