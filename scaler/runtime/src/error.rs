//! The crate's error type, and the errors its ports report.

use std::fmt;

/// What an adapter behind one of the ports reported: its own error, kept whole (message and
/// sources), since the runtime cannot name the adapters' error types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed call of a [`Fleet`](crate::Fleet) (or of the [`FleetFactory`](crate::FleetFactory)
/// that builds them). It shows as the adapter's error does (e.g. `scaling group "web": EC2
/// Auto Scaling DescribeAutoScalingGroups failed: ...`), so it names the group and the
/// endpoint.
#[derive(Debug)]
pub struct FleetError(BoxError);

/// A failed read or write of the [`GroupStore`](crate::GroupStore). It shows as the
/// adapter's error does.
#[derive(Debug)]
pub struct StoreError(BoxError);

macro_rules! port_error {
    ($name:ident) => {
        impl $name {
            /// Wraps what the adapter reported.
            pub fn new(error: impl Into<BoxError>) -> Self {
                $name(error.into())
            }

            /// What the adapter reported.
            pub fn into_inner(self) -> BoxError {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.0.source()
            }
        }
    };
}

port_error!(FleetError);
port_error!(StoreError);

/// Errors of the scaling runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The group store could not be read (start-up) or written. Check the data directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The fleets of the configuration could not be built, or a real group could not be
    /// described or updated at start-up. Check the backend the message names.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// A request to scale by hand names no group of the configuration.
    #[error("no scaling group named {group:?}")]
    UnknownGroup {
        /// The group asked for.
        group: String,
    },
    /// A request to scale by hand was refused (a parameter, an unknown policy, the
    /// cooldown or a warm-up); the error names the field or the policy.
    #[error(transparent)]
    Manual(#[from] thermostat_scaler::ManualError),
    /// Start-up found problems; every one is listed (in group order, the fleets' first), so
    /// that they can all be fixed at once.
    #[error("the scaling groups cannot start: {}", list(.0))]
    Start(Vec<Error>),
}

fn list(problems: &[Error]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
