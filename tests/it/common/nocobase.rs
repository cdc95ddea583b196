//! The real NocoBase of `scripts/install-nocobase.sh`, for the tests that run it.

use std::path::{Path, PathBuf};

/// The NocoBase app folder scripts/install-nocobase.sh made (it prints it): HANGAR_TEST_NOCOBASE
/// (set by scripts/test.sh) or the script's default cache folder. Fails when it is missing.
pub fn nocobase_app() -> PathBuf {
    let app = match std::env::var("HANGAR_TEST_NOCOBASE") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::var("HOME")
            .map(|h| PathBuf::from(h).join(".cache/hangar/nocobase/2.2.15/app"))
            .unwrap_or_default(),
    };
    assert!(
        app.join(".hangar-installed").is_file(),
        "NocoBase is missing at {}: run scripts/install-nocobase.sh (or set HANGAR_TEST_NOCOBASE \
         to the app folder it prints)",
        app.display()
    );
    app
}

/// The engine's PATH with the install's Node first (the preset runs `node` from PATH).
pub fn path_with_node(app: &Path) -> String {
    let bin = app.parent().map(|r| r.join("bin")).unwrap_or_default();
    assert!(
        bin.join("node").is_file(),
        "{} has no Node: run scripts/install-nocobase.sh",
        bin.display()
    );
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
