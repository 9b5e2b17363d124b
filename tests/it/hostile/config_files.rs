//! Hostile input: config_files (issue 15).
