//! What Hangar keeps: the registry of apps (`registry`), each app's database on the data
//! service (`provision`), and backup archives (`archive`).
//!
//! Invariant: imports only `base`; knows nothing of running processes or of the engine.

pub mod archive;
pub mod provision;
pub mod registry;
