//! `hangar startup [--user]` and `hangar unstartup [--user]`: a systemd unit that runs
//! `hangar serve` for this home at boot (system unit, in /etc/systemd/system) or at the user's
//! login (`--user`, in ~/.config/systemd/user; with lingering, at boot too), enabled and
//! started with `systemctl`. `--print` only prints the unit; `--no-enable` writes it without
//! calling systemctl (`systemctl` must run for the rest).
//!
//! The unit sends SIGTERM to the engine alone (`KillMode=mixed`), which stops every app
//! itself, and gives it the 120 s `hangar kill` gives before systemd's SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

use hangar::base::home::Home;

#[derive(Args, Debug)]
pub struct StartupArgs {
    /// A user unit (~/.config/systemd/user), started at login, or at boot with
    /// `loginctl enable-linger`; default: a system unit (needs root) run as the current user.
    #[arg(long)]
    pub user: bool,
    /// Only print the unit.
    #[arg(long)]
    pub print: bool,
    /// Write (or remove) the unit without calling systemctl.
    #[arg(long)]
    pub no_enable: bool,
    /// Print JSON instead of text (shapes: docs/contracts.md).
    #[arg(long)]
    pub json: bool,
}

/// The unit's file name: `hangar.service` for the default home, else one per home.
pub fn unit_name(home: &Path, default_home: Option<&Path>) -> String {
    if default_home == Some(home) {
        return "hangar.service".into();
    }
    let h = home
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("hangar-{:08x}.service", h as u32)
}

/// A value for a unit's `ExecStart=` or `Environment=`: quoted, with systemd's escapes, and `%`
/// doubled (systemd would read it as a specifier).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The unit: `hangar --home HOME serve`, restarted when it fails; a user unit (`user_unit`)
/// is wanted by `default.target`, a system one by `multi-user.target`, run as `run_as`.
pub fn unit(
    exe: &Path,
    home: &Path,
    user_unit: bool,
    run_as: Option<&str>,
    demo_bin: Option<&str>,
) -> String {
    let mut s = String::new();
    s.push_str("[Unit]\n");
    s.push_str(&format!(
        "Description=Hangar engine (home {})\n",
        home.display().to_string().replace('%', "%%")
    ));
    // The system manager has network-online.target; a user manager has none (a dependency
    // on it would only be a warning there, and wait for nothing).
    if !user_unit {
        s.push_str("Wants=network-online.target\nAfter=network-online.target\n");
    }
    s.push('\n');
    s.push_str("[Service]\nType=simple\n");
    s.push_str(&format!(
        "ExecStart={} --home {} serve\n",
        quoted(&exe.display().to_string()),
        quoted(&home.display().to_string())
    ));
    if let Some(u) = run_as.filter(|_| !user_unit) {
        s.push_str(&format!("User={u}\n"));
    }
    if let Some(d) = demo_bin {
        s.push_str(&format!(
            "Environment={}\n",
            quoted(&format!("HANGAR_DEMO_BIN={d}"))
        ));
    }
    s.push_str("Restart=on-failure\nRestartSec=2\n");
    // SIGTERM to the engine only: it stops the apps (each its own process group) itself.
    s.push_str("KillMode=mixed\nTimeoutStopSec=130\n\n");
    s.push_str("[Install]\n");
    s.push_str(if user_unit {
        "WantedBy=default.target\n"
    } else {
        "WantedBy=multi-user.target\n"
    });
    s
}

/// Where the unit file goes.
fn unit_dir(user: bool) -> Result<PathBuf> {
    if user {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| dirs::home_dir().map(|h| h.join(".config")))
            .context("no home folder to put a user unit in")?;
        Ok(base.join("systemd/user"))
    } else {
        Ok(PathBuf::from("/etc/systemd/system"))
    }
}

fn systemctl(user: bool, args: &[&str]) -> Result<()> {
    let mut c = Command::new("systemctl");
    if user {
        c.arg("--user");
    }
    let out = c
        .args(args)
        .output()
        .context("cannot run systemctl (is systemd installed?)")?;
    if !out.status.success() {
        bail!(
            "systemctl{} {} failed: {}",
            if user { " --user" } else { "" },
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether systemd manages this machine (its own test, sd_booted's: `/run/systemd/system`)
/// and, for `--user`, whether the user's manager answers. Asked before anything is written,
/// so a machine without systemd is told so and left as it was.
fn systemd_running(user: bool) -> Result<()> {
    let alternatives = "`hangar startup --print` prints the unit to install by hand; --no-enable writes it without calling systemctl";
    if !Path::new("/run/systemd/system").is_dir() {
        bail!("systemd is not running on this machine, so no unit can be enabled; nothing was written ({alternatives})");
    }
    if user {
        let out = Command::new("systemctl")
            .args(["--user", "show-environment"])
            .output()
            .context("cannot run systemctl (is systemd installed?)")?;
        if !out.status.success() {
            bail!(
                "the user's systemd manager does not answer ({}); nothing was written (a login session starts it; {alternatives})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

fn current_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

pub fn startup(home: &Home, a: StartupArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot tell where this hangar program is")?;
    let root = &std::path::absolute(home.root())
        .with_context(|| format!("cannot tell where {} is", home.root().display()))?;
    let name = unit_name(root, Home::default_root().as_deref());
    // A system unit runs as whoever called sudo, else whoever installs it (root as root).
    let run_as = (!a.user)
        .then(|| std::env::var("SUDO_USER").ok().or_else(current_user))
        .flatten()
        .filter(|u| !u.is_empty() && u != "root");
    let demo = std::env::var("HANGAR_DEMO_BIN").ok();
    let text = unit(&exe, root, a.user, run_as.as_deref(), demo.as_deref());
    if a.print {
        out!("{text}");
        return Ok(());
    }
    if !a.no_enable {
        systemd_running(a.user)?;
    }
    let dir = unit_dir(a.user)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(&name);
    std::fs::write(&path, &text).with_context(|| {
        format!(
            "cannot write {}{}",
            path.display(),
            if a.user {
                ""
            } else {
                " (a system unit needs root: sudo, or --user)"
            }
        )
    })?;
    let enabled = if a.no_enable {
        false
    } else {
        // The unit is written: a failure from here on names it.
        let enable = systemctl(a.user, &["daemon-reload"])
            .and_then(|()| systemctl(a.user, &["enable", "--now", &name]));
        enable.with_context(|| format!("wrote {} but could not enable it", path.display()))?;
        true
    };
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "unit": name, "path": path, "user": a.user, "enabled": enabled })
        );
        return Ok(());
    }
    outln!("wrote {}", path.display());
    let sc = if a.user {
        "systemctl --user"
    } else {
        "systemctl"
    };
    if enabled {
        outln!("enabled and started {name}: `{sc} status {name}` shows it");
    } else {
        outln!("enable it with `{sc} daemon-reload && {sc} enable --now {name}`");
    }
    if a.user {
        outln!(
            "a user unit starts at login; to start it at boot without a login: `loginctl enable-linger {}`",
            current_user().unwrap_or_else(|| "$USER".into())
        );
    }
    Ok(())
}

pub fn unstartup(home: &Home, a: StartupArgs) -> Result<()> {
    let root = std::path::absolute(home.root())
        .with_context(|| format!("cannot tell where {} is", home.root().display()))?;
    let name = unit_name(&root, Home::default_root().as_deref());
    let path = unit_dir(a.user)?.join(&name);
    if !path.exists() {
        bail!("no unit {} for this home", path.display());
    }
    if !a.no_enable {
        systemctl(a.user, &["disable", "--now", &name])?;
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    if !a.no_enable {
        systemctl(a.user, &["daemon-reload"])?;
    }
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "unit": name, "path": path, "removed": true })
        );
    } else {
        outln!("removed {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_systemd() {
        assert_eq!(quoted("/a b/%h$x\"y"), "\"/a b/%%h$$x\\\"y\"");
        let u = unit(
            Path::new("/usr/bin/hangar"),
            Path::new("/srv/hangar"),
            false,
            Some("app"),
            None,
        );
        assert!(u.contains("ExecStart=\"/usr/bin/hangar\" --home \"/srv/hangar\" serve\n"));
        assert!(u.contains("User=app\n"));
        assert!(u.contains("KillMode=mixed\n"));
        assert!(u.contains("After=network-online.target\n"));
        // A user manager has no network-online.target.
        let u = unit(
            Path::new("/usr/bin/hangar"),
            Path::new("/srv/hangar"),
            true,
            None,
            None,
        );
        assert!(!u.contains("network-online"), "{u}");
    }

    #[test]
    fn each_home_has_a_unit_name_of_its_own() {
        let d = Path::new("/home/u/.local/share/hangar");
        assert_eq!(unit_name(d, Some(d)), "hangar.service");
        let a = unit_name(Path::new("/srv/a"), Some(d));
        let b = unit_name(Path::new("/srv/b"), Some(d));
        assert_ne!(a, b);
        assert!(a.starts_with("hangar-") && a.ends_with(".service"));
    }
}
