//! Hangar's engine: a library the `hangar` CLI and the desktop shell both host.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod engine;
pub mod home;
pub mod launch;
pub mod logfiles;
pub mod logs;
pub mod metrics;
pub mod metrics_api;
pub mod monit;
pub mod monitor;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod secret;
pub mod supervisor;
pub mod validate;
