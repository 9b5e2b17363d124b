//! The one error of the cluster adapter.

/// What went wrong talking to NATS or with the cluster's shared settings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No NATS server could be reached.
    #[error("cannot connect to NATS at {servers}: {reason}")]
    Connect {
        /// The servers tried, as given.
        servers: String,
        /// What the client said.
        reason: String,
    },
    /// A JetStream call failed (the stream, a KV bucket, a consumer).
    #[error("NATS JetStream {what}: {reason}")]
    JetStream {
        /// What was being done.
        what: &'static str,
        /// What the server or client said.
        reason: String,
    },
    /// The connection to NATS is down: nothing was sent.
    #[error("NATS is unreachable; nothing of the request was stored")]
    Unreachable,
    /// The settings disagree with what the cluster was created with.
    #[error("cluster settings: {0}")]
    Settings(String),
}

impl Error {
    pub(crate) fn js(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> Error {
        move |e| Error::JetStream {
            what,
            reason: e.to_string(),
        }
    }
}
