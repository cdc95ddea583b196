//! Hangar's engine: a library the `hangar` CLI and the desktop shell both host.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod engine;
pub mod export;
pub mod home;
pub mod launch;
pub mod logs;
pub mod metrics;
pub mod process;
pub mod provision;
pub mod proxy;
pub mod registry;
pub mod secret;
pub mod supervisor;
pub mod ui_server;
pub mod validate;
