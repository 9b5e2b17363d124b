//! [`AuthTelemetry`]: refusals by role and permission, and by reason.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::role::{Permission, Role};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeniedLabels {
    role: &'static str,
    permission: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Refusals counted for `/metrics`. Clones share the counters.
#[derive(Clone, Debug)]
pub struct AuthTelemetry {
    denied: Family<DeniedLabels, Counter>,
    unauthenticated: Family<ReasonLabels, Counter>,
}

impl Default for AuthTelemetry {
    fn default() -> Self {
        let unauthenticated = Family::<ReasonLabels, Counter>::default();
        // Every reason starts at zero, so that its series exists before the first refusal.
        for reason in ["missing", "malformed", "unknown"] {
            drop(unauthenticated.get_or_create(&ReasonLabels { reason }));
        }
        AuthTelemetry {
            denied: Family::default(),
            unauthenticated,
        }
    }
}

impl AuthTelemetry {
    /// Registers `thermostat_auth_denied{role,permission}` and
    /// `thermostat_auth_unauthenticated{reason}` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "thermostat_auth_denied",
            "Requests refused (403 / PERMISSION_DENIED) by the principal's role and the permission missing",
            self.denied.clone(),
        );
        registry.register(
            "thermostat_auth_unauthenticated",
            "Requests refused (401 / UNAUTHENTICATED): no token, a malformed header, or a token not in force",
            self.unauthenticated.clone(),
        );
    }

    pub(crate) fn denied(&self, role: Role, permission: Permission) {
        self.denied
            .get_or_create(&DeniedLabels {
                role: role.as_str(),
                permission: permission.label(),
            })
            .inc();
    }

    /// Counts a request without a principal, by `reason` (`missing`, `malformed`, `unknown`).
    pub(crate) fn unauthenticated(&self, reason: &'static str) {
        self.unauthenticated
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Refusals of `permission` to `role` so far.
    pub fn denied_count(&self, role: Role, permission: Permission) -> u64 {
        self.denied
            .get_or_create(&DeniedLabels {
                role: role.as_str(),
                permission: permission.label(),
            })
            .get()
    }
}
