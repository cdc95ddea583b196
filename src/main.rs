use clap::Parser;

#[macro_use]
mod cli;

fn main() {
    let cli = cli::Cli::parse();
    cli::check_usage(&cli);
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
        // A verb that already wrote its document (bulk results) writes no second one.
        if cli::output::wants_json() && !cli::output::reported(&e) {
            outln!("{}", cli::output::error_json(&e));
        }
        eprintln!("hangar: {}", cli::output::error_line(&e));
        std::process::exit(1);
    }
}
