//! Shared harness for the end-to-end tests: spawning the real binaries and the real helper
//! servers (moto, SMTP sink), each stopped when its guard drops.

pub mod attack;
