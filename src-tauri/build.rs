// tauri.conf.json lives at the repository root (ARCHITECTURE.md); cargo builds with it there.
// The app's commands get permissions of their own (`allow-<command>`), so a page loaded from the
// engine's origin reaches only the few commands a capability grants it.
const COMMANDS: &[&str] = &[
    "shell_info",
    "list_apps",
    "start_app",
    "stop_app",
    "open_logs",
    "log_tail",
    "follow_logs",
    "get_autostart",
    "set_autostart",
    "tray_model",
    "status_rules",
    "show_main",
    "quit",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri-build: {e:#}");
    }
}
