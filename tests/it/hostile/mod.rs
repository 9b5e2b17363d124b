//! Hostile input against the real server and CLI (issue 15): every finding of the probe
//! reproduced, and the bounded behaviour that replaced it asserted, with the resource bound
//! (memory from `/proc`, CPU time, file counts), never a wall-clock speed.

mod auth;
mod cli_input;
mod cloudwatch;
mod config_files;
mod history_and_admin;
mod ingest_wire;
mod procfs;
mod prometheus;
mod queries;
mod transport;
