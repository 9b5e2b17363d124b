//! Hostile input: queries (issue 15).
