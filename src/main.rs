use clap::Parser;

#[macro_use]
mod cli;

fn main() {
    let cli = cli::Cli::parse();
    hangar::base::process::raise_open_files_limit();
    hangar::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hangar: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(cli::run(cli)) {
        // A reader that went away (`hangar logs | head`): ended as other programs end.
        if let Some(io) = cli::output::closed_stdout(&e) {
            cli::output::stdout_failed(io);
        }
        // One clear line: the error and its causes; with --json also the one error shape on
        // standard output.
        if cli::output::wants_json() {
            outln!("{}", cli::output::error_json(&e));
        }
        let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("hangar: {}", msg.join(": "));
        std::process::exit(1);
    }
}
