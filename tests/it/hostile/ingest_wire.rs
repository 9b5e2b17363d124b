//! Hostile input: ingest_wire (issue 15).
