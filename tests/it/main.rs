//! Every integration test of the engine, in one test binary (as ripgrep does): the library is
//! linked once, not once per file. Each module is one area; `cargo test --test it proxy::` runs
//! one of them. `common` is the harness they share (a real `hangar serve`, the real CLI).

mod common;

mod chaos;
mod client;
mod compat;
mod data;
mod databases;
mod export;
mod hardening;
mod layers;
mod lifecycle;
mod metrics_logs;
mod nocobase;
mod nocobase_import;
mod operator;
mod presets;
mod processes;
mod properties;
mod proxy;
mod resources;
mod runtimes;
mod verbs;
