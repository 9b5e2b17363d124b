//! The crate's one error type.

/// Errors of notification delivery and of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The outbox file cannot be opened, read or written. Check the data directory's
    /// permissions and free space; the file is `<dir>/outbox.redb`.
    #[error("notification outbox: {0}")]
    Outbox(String),
    /// The queue in front of the outbox is full: notifications arrive faster than they can
    /// be written. Raise `notifications.queue_capacity`.
    #[error("notification queue is full ({capacity} waiting)")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The dispatcher is shutting down and accepts no new notifications.
    #[error("the notification dispatcher is shutting down")]
    ShuttingDown,
    /// No notifier is configured for this kind of delivery (for example a `mailto:` action
    /// without `notifications.smtp`, or SNS without AWS configuration).
    #[error("no {kind} notifier is configured")]
    NotConfigured {
        /// `sns`, `email` or `webhook`.
        kind: &'static str,
    },
    /// The action cannot be turned into a notification with the current settings (an
    /// unknown `webhook:<name>`, a missing routing key...). Fix the configuration.
    #[error("alarm {alarm}: action {action}: {message}")]
    Undeliverable {
        /// The alarm.
        alarm: String,
        /// The action.
        action: String,
        /// Why.
        message: String,
    },
    /// An environment variable named by the settings (`password_env`, `secret_env`,
    /// `routing_key_env`) is not set, or is empty. Set it before starting Thermostat.
    #[error("{setting}: the environment variable {var} is not set")]
    MissingSecret {
        /// The setting naming the variable.
        setting: String,
        /// The variable.
        var: String,
    },
    /// A file named by the settings (a secret's `*_file`, a `ca_file`) cannot be used: it
    /// cannot be read, is too large, is empty, or (a CA bundle) holds no certificate. Fix
    /// the file or the setting; the message never quotes the file's contents.
    #[error("{setting}: the file {path} {message}")]
    File {
        /// The setting naming the file (`notifications.smtp.password_file`).
        setting: String,
        /// The file.
        path: String,
        /// What is wrong (`cannot be read (No such file or directory (os error 2))`).
        message: String,
    },
    /// SNS refused or failed the `Publish`.
    #[error("SNS publish to {topic}: {message}")]
    Sns {
        /// The topic ARN.
        topic: String,
        /// The error, with its code.
        message: String,
        /// Whether retrying cannot help (unknown topic, bad parameters, no permission).
        permanent: bool,
    },
    /// The SMTP server refused or failed the message.
    #[error("SMTP delivery to {to}: {message}")]
    Smtp {
        /// The recipient.
        to: String,
        /// The error.
        message: String,
        /// Whether retrying cannot help (a 5xx reply, an invalid address).
        permanent: bool,
    },
    /// The webhook request failed.
    #[error("webhook POST {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// The HTTP status, when a response came.
        status: Option<u16>,
        /// The error.
        message: String,
        /// Whether retrying cannot help (a 4xx other than 408 and 429).
        permanent: bool,
    },
    /// Bad settings given to a notifier's constructor.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same notification cannot succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Sns { permanent, .. }
            | Error::Smtp { permanent, .. }
            | Error::Http { permanent, .. } => *permanent,
            Error::Undeliverable { .. }
            | Error::NotConfigured { .. }
            | Error::MissingSecret { .. }
            | Error::File { .. }
            | Error::Config(_) => true,
            Error::Outbox(_) | Error::QueueFull { .. } | Error::ShuttingDown => false,
        }
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Outbox(e.to_string())
    }
}

macro_rules! outbox_errors {
    ($($t:ty),+) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Outbox(e.to_string())
            }
        }
    )+};
}

outbox_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error,
    std::io::Error
);

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
