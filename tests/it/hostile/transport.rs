//! Hostile input: transport (issue 15).
