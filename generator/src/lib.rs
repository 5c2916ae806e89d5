//! The `cahier` library: the generator and the organizer tools behind the CLI.

pub mod admin;
