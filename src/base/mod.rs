//! The ground floor: rules and facts that need nothing else of Hangar. Operator input rules
//! (`validate`), `hangar.toml` (`config`), the home folder (`home`), secrets, an app's database
//! settings (`db`, `dialect`), Linux process facts (`process`), memory cgroups (`cgroup`), the table of long jobs (`jobs`),
//! the clock, and the few web helpers both front doors share (`web`).
//!
//! Invariant: nothing here imports another layer.

pub mod cgroup;
pub mod clock;
pub mod config;
pub mod db;
pub mod dialect;
pub mod dotenv;
pub mod home;
pub mod jobs;
pub mod process;
pub mod secret;
pub mod validate;
pub mod web;
