//! Hostile input: cli_input (issue 15).
