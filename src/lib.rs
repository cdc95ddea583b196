//! Hangar's engine: a library the `hangar` CLI and the desktop shell both host.
//! See ARCHITECTURE.md for the map.

pub mod api;
mod api_data;
pub mod backup;
pub mod cli;
mod cli_data;
pub mod client;
pub mod config;
pub mod db;
pub mod engine;
pub mod export;
pub mod home;
pub mod import;
pub mod jobs;
pub mod launch;
pub mod logfiles;
pub mod logs;
pub mod metrics;
pub mod metrics_api;
pub mod monit;
pub mod monitor;
pub mod process;
pub mod provision;
pub mod proxy;
pub mod registry;
pub mod secret;
pub mod supervisor;
pub mod ui_server;
pub mod validate;
