//! The `thermostat` binary's library: command-line definitions and the wiring of every crate,
//! so that tests run the real application in-process.
//!
//! # What this crate owns
//! The CLI ([`cli`]) and its offline commands ([`commands`]), settings, start-up, the maintenance loop and ordered shutdown ([`app`]), and `thermostat demo` ([`demo`]).
//!
//! # Invariants
//! Nothing imports this crate; it is the only place where adapters meet.
//!
//! # Layout
//! `cli.rs`, `app/mod.rs` (start/stop), `app/settings.rs` (flags + settings file), `demo/`
//! (simulated agents and the real-time runner).

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod export_alarms;
pub mod process;
pub mod security;
pub mod settings;
