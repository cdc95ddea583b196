//! What a window loads: the engine's own control panel when it serves one on its API origin
//! (else the pages built into the shell), logged in through a one-time login link, a language
//! WebKit's `Intl` accepts, and the script that turns log links into native log windows (the
//! windows themselves, with their link handling, are `windows.rs`).
//!
//! Invariants: the API token never reaches a webview (a window loads a one-time login link and
//! the page trades its code for a panel session, kept in the API origin's own storage; no
//! cookie holds a credential); no page shows before the right one (a blank page until the
//! login link is loaded); nothing but the engine's UI or the built-in pages is opened inside
//! the shell.

use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Runtime, WebviewUrl};

use super::shell;
use super::Shell;

/// The control panel's log viewer route on the engine's UI origin; `{name}` is the app, and
/// `?bare` drops the top bar for a window of its own. Keep it in step with ui/ (the one place
/// to change it).
pub const LOG_ROUTE: &str = "/#/logs/{name}?bare";
/// Injected into the shell's windows: log links of the engine's UI open native log windows.
pub(super) const ENGINE_UI_SCRIPT: &str = include_str!("../engine_ui.js");

/// What the windows load: the engine's own control panel when it serves one, else the pages
/// built into the shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UiTarget {
    Engine { origin: String },
    Builtin,
}

impl UiTarget {
    pub fn main_url(&self) -> WebviewUrl {
        match self {
            UiTarget::Engine { origin } => match format!("{origin}/").parse() {
                Ok(u) => WebviewUrl::External(u),
                Err(_) => WebviewUrl::App("index.html".into()),
            },
            UiTarget::Builtin => WebviewUrl::App("index.html".into()),
        }
    }

    pub fn logs_url(&self, app: &str) -> WebviewUrl {
        match self {
            UiTarget::Engine { origin } => {
                match format!("{origin}{}", LOG_ROUTE.replace("{name}", app)).parse() {
                    Ok(u) => WebviewUrl::External(u),
                    Err(_) => WebviewUrl::App(format!("logs.html?app={app}").into()),
                }
            }
            UiTarget::Builtin => WebviewUrl::App(format!("logs.html?app={app}").into()),
        }
    }
}

impl Shell {
    /// Does the engine serve the control panel on its API origin? Asked each time a window is
    /// made, so a UI that appears later is used from then on.
    pub async fn ui_target(&self) -> UiTarget {
        if self.options.builtin_ui {
            return UiTarget::Builtin;
        }
        let origin = format!("http://127.0.0.1:{}", self.backend.api_port());
        let http = match reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
        {
            Ok(c) => c,
            Err(_) => return UiTarget::Builtin,
        };
        let html = http
            .get(format!("{origin}/"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.headers().get("content-type").cloned())
            .and_then(|v| v.to_str().ok().map(|s| s.starts_with("text/html")))
            .unwrap_or(false);
        if html {
            UiTarget::Engine { origin }
        } else {
            UiTarget::Builtin
        }
    }
}

/// What a new window loads first: the built-in page itself, or, for the engine's UI, a blank
/// page until the webview is logged in (so no page of either kind shows before the right one).
pub(super) fn first_url(target: &UiTarget, url: WebviewUrl) -> WebviewUrl {
    match (target, "about:blank".parse()) {
        (UiTarget::Engine { .. }, Ok(blank)) => WebviewUrl::External(blank),
        _ => url,
    }
}

/// Hand a URL to the desktop's browser (`xdg-open`), detached.
pub(super) fn open_in_browser(url: &str) {
    match std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            // Reap it when it ends; xdg-open returns as soon as the browser has the URL.
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::warn!("cannot run xdg-open for {url}: {e}"),
    }
}

/// The login link that opens `url` (a page of the engine's UI) logged in: `/login?code=` on the
/// same origin, with `url`'s route (its fragment) after it.
pub fn login_link(url: &tauri::Url, code: &str) -> tauri::Url {
    let mut link = url.clone();
    link.set_path("/login");
    link.set_query(Some(&format!("code={code}")));
    link
}

/// Log the window in and load the engine's UI: a fresh one-time login code (each window its
/// own), whose link the page trades for a panel session.
pub(super) async fn open_engine_ui<R: Runtime>(
    app: &AppHandle<R>,
    w: &tauri::WebviewWindow<R>,
    url: &WebviewUrl,
) -> tauri::Result<()> {
    let sh = shell(app);
    let WebviewUrl::External(url) = url else {
        return Ok(());
    };
    let code = match sh.backend.login_code().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot log the window in (the page will ask for `hangar open`): {e}");
            return w.navigate(url.clone());
        }
    };
    let link = login_link(url, &code);
    if let Some(lang) = webview_language() {
        w.with_webview(move |pw| {
            use webkit2gtk::{WebContextExt, WebViewExt};
            if let Some(ctx) = pw.inner().context() {
                ctx.set_preferred_languages(&[lang]);
            }
        })?;
    }
    w.navigate(link)
}

/// Under the C/POSIX locale (CI, containers, `LANG=C.UTF-8`) WebKitGTK gives pages the language
/// `c`, which `Intl` rejects ("invalid language tag"), breaking pages that format numbers: name a
/// real language then. Any real locale is left to WebKit.
pub fn webview_language() -> Option<&'static str> {
    let ctype = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default();
    let base = ctype.split(['.', '@']).next().unwrap_or("");
    matches!(base, "" | "C" | "POSIX").then_some("en-US")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_link_keeps_the_windows_route_on_the_same_origin() {
        let o = "http://127.0.0.1:13001";
        let link = |u: &str| login_link(&u.parse().unwrap(), "c0de").to_string();
        assert_eq!(link(&format!("{o}/")), format!("{o}/login?code=c0de"));
        assert_eq!(
            link(&format!("{o}{}", LOG_ROUTE.replace("{name}", "shop"))),
            format!("{o}/login?code=c0de#/logs/shop?bare")
        );
    }
}
