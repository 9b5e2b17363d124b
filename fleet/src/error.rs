//! The crate's error type.

use thermostat_metrics::Timestamp;

/// Errors of the fleet adapters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The group is not known to this fleet. Register it (`with_group`/`add_group`) when
    /// building the fleet.
    #[error("scaling group {group:?} is not managed by this fleet")]
    UnknownGroup {
        /// The group.
        group: String,
    },
    /// The request breaks the group's limits (EC2's `ValidationError`), e.g. a desired
    /// capacity above `max_size`. Change the limits first.
    #[error("scaling group {group:?}: {message}")]
    Validation {
        /// The group.
        group: String,
        /// EC2-style message.
        message: String,
    },
    /// `honor_cooldown` was asked and the group is in cooldown (EC2's
    /// `ScalingActivityInProgress`). Retry after `until`.
    #[error("scaling group {group:?}: scaling activities in progress (cooldown until {until})")]
    Cooldown {
        /// The group.
        group: String,
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// An EC2 Auto Scaling call failed. Check credentials, region, endpoint and the
    /// `auto_scaling_group_name`.
    #[error("scaling group {group:?}: EC2 Auto Scaling {operation} failed: {message}")]
    AutoScaling {
        /// The group.
        group: String,
        /// `DescribeAutoScalingGroups`, `SetDesiredCapacity` or `UpdateAutoScalingGroup`.
        operation: &'static str,
        /// The SDK's error, with its context.
        message: String,
    },
    /// A webhook call failed or answered badly. Check the endpoint at `url`.
    #[error("scaling group {group:?}: webhook {url} {}: {message}", status.map_or_else(|| "failed".to_owned(), |s| format!("answered HTTP {s}")))]
    Webhook {
        /// The group.
        group: String,
        /// The URL called.
        url: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// A webhook group's CA bundle (its `webhook_ca_file`) cannot be used: it cannot be
    /// read, is too large, or holds no PEM certificate. Fix the file or the setting naming
    /// it.
    #[error("scaling_groups.{group}.webhook_ca_file: the CA bundle {path} {message}")]
    CaFile {
        /// The group.
        group: String,
        /// The bundle's path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client of webhook fleets cannot be built (no TLS backend).
    #[error("webhook fleets: cannot build the HTTP client: {message}")]
    HttpClient {
        /// The client builder's error.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
