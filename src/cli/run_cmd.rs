//! The verbs about what an app runs: `create … -- PROGRAM` (an app's own program), `exec`
//! (a program with an app's environment) and `reload` (hangar.toml read again).

use anyhow::{bail, Result};

use hangar::api::client::Client;
use hangar::base::config::{AppCommand, Prefix};

/// An app's own program from `create NAME [--prefix keep|strip] [--health PATH] -- PROGRAM …`;
/// `None` when no program was given.
pub(crate) fn app_command(
    argv: Vec<String>,
    prefix: Option<String>,
    health: Option<String>,
) -> Result<Option<AppCommand>> {
    if argv.is_empty() {
        return Ok(None);
    }
    let prefix = match prefix.as_deref() {
        None => None,
        Some("keep") => Some(Prefix::Keep),
        Some("strip") => Some(Prefix::Strip),
        Some(other) => bail!("--prefix {other:?} is not accepted; accepted: keep, strip"),
    };
    Ok(Some(AppCommand {
        argv,
        prefix,
        health,
    }))
}

/// A command line as a POSIX shell would read it back: words quoted only when they need it.
pub(crate) fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,{}$".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `hangar exec NAME [--json] -- PROGRAM [ARGS…]`: this process becomes PROGRAM, with exactly
/// the app's environment (the engine's, as a start builds it) in the app's working folder, so
/// its output, its exit status, its signals and the terminal are the program's own. Exit 127
/// when PROGRAM is not found, 126 when it cannot be run, as a shell does; with `--json` that
/// refusal is also the one error shape on stdout (field `program`), as every other refusal of
/// exec is (`main.rs`).
pub(crate) async fn exec(c: &Client, name: &str, program: Vec<String>, json: bool) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let Some((prog, args)) = program.split_first() else {
        bail!("give the program to run after `--`: hangar exec NAME -- PROGRAM [ARGS…]");
    };
    let s = c.exec_setting(name).await?;
    // The program is looked up on the app's PATH, as the app's own would be.
    let path = s.env.get("PATH").cloned().unwrap_or_default();
    let resolved = if prog.contains('/') {
        std::path::PathBuf::from(prog)
    } else {
        std::env::split_paths(&path)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
            .unwrap_or_else(|| std::path::PathBuf::from(prog))
    };
    let err = std::process::Command::new(&resolved)
        .arg0(prog)
        .args(args)
        .env_clear()
        .envs(&s.env)
        .current_dir(&s.cwd)
        .exec();
    let why = format!(
        "cannot run {prog:?} in {} for {name}: {err}",
        s.cwd.display()
    );
    if json {
        let failure = anyhow::Error::new(crate::cli::output::Failure::field("program", &why));
        outln!("{}", crate::cli::output::error_json(&failure));
    }
    eprintln!("hangar: {why}");
    std::process::exit(match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    });
}

/// `hangar reload [--json]`: what changed, or why the file was refused (exit 1).
pub(crate) async fn reload(c: &Client, json: bool) -> Result<()> {
    let r = c.reload().await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    match (&r.applied_before, r.is_empty()) {
        // The file watcher got there first: what it applied is what the operator came for.
        (Some(before), true) => outln!(
            "hangar.toml read again: nothing new since its last change was applied ({before})"
        ),
        (None, true) => outln!("hangar.toml read again: no runtime changed"),
        _ => {}
    }
    for (what, names) in [
        ("added", &r.added),
        ("changed", &r.changed),
        ("removed", &r.removed),
    ] {
        if !names.is_empty() {
            outln!("{what}: {}", names.join(", "));
        }
    }
    if !r.running_on_changed.is_empty() {
        outln!(
            "running on the old settings until restarted: {}",
            r.running_on_changed.join(", ")
        );
    }
    for n in &r.notes {
        outln!("note: {n}");
    }
    Ok(())
}
