//! Hostile input: history_and_admin (issue 15).
