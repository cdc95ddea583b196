//! `hangar completions bash|zsh|fish` (clap_complete) and `hangar man` (clap_mangen): both
//! made from the command line's own declaration, so they never fall behind a verb or a flag.
//! The .deb installs them (scripts/package-deb.sh). Their write errors reach `main` as the
//! `io::Error`s they are, so a reader that went away (`hangar completions bash | head -1`) ends
//! the verb as it ends the others (`output.rs`): clap_complete's writer panics on a failed
//! write, so a script is made in memory first.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write hangar.1 and one hangar-VERB.1 per verb into DIR instead of printing hangar.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(shell: ShellKind) -> Result<()> {
    let mut cmd = crate::cli::Cli::command();
    let shell = match shell {
        ShellKind::Bash => clap_complete::Shell::Bash,
        ShellKind::Zsh => clap_complete::Shell::Zsh,
        ShellKind::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hangar", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

pub fn man(a: ManArgs) -> Result<()> {
    let cmd = crate::cli::Cli::command();
    let Some(dir) = a.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, page: clap_mangen::Man| -> Result<()> {
        let mut buf = Vec::new();
        page.render(&mut buf)?;
        let path = dir.join(name);
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))
    };
    write("hangar.1", clap_mangen::Man::new(cmd.clone()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands() {
        let name = format!("hangar-{}", sub.get_name());
        let page = clap_mangen::Man::new(
            sub.clone()
                .display_name(name.clone())
                .bin_name(format!("hangar {}", sub.get_name())),
        );
        write(&format!("{name}.1"), page)?;
        n += 1;
    }
    eprintln!("wrote {n} man pages into {}", dir.display());
    Ok(())
}
