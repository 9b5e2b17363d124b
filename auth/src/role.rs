//! Roles and the permissions each grants.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a principal may do. Each role includes the ones before it except `agent`, which only
/// pushes: `viewer` ⊂ `operator` ⊂ `admin`, and `admin` may also push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pushes metrics (every ingest API), nothing else.
    Agent,
    /// Reads metrics, statistics, alarms, history, groups, activities, notifications, and the
    /// dashboard.
    Viewer,
    /// A viewer that also reloads, sets alarm states, enables and disables alarm actions,
    /// scales manually, and creates and deletes API alarms.
    Operator,
    /// Everything, including backups, the audit trail and token administration.
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 4] = [Role::Agent, Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name in settings and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether the role grants `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match permission.needs() {
            Role::Agent => matches!(self, Role::Agent | Role::Admin),
            Role::Viewer => self >= Role::Viewer,
            Role::Operator => self >= Role::Operator,
            Role::Admin => self == Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: one of agent, viewer, operator, admin"))
    }
}

/// One thing a request does; every endpoint and RPC needs exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Push metrics (every ingest API).
    PushMetrics,
    /// Read metrics and statistics.
    ReadMetrics,
    /// Read alarms and their history.
    ReadAlarms,
    /// Read scaling groups and their activities.
    ReadGroups,
    /// Read sent notifications.
    ReadNotifications,
    /// See the dashboard's pages.
    ViewDashboard,
    /// Read the server's own metrics (`/metrics`, unless `auth.public_metrics`).
    ReadTelemetry,
    /// Reload the configuration.
    Reload,
    /// Set an alarm's state (`SetAlarmState`).
    SetAlarmState,
    /// Enable or disable an alarm's actions.
    ToggleAlarmActions,
    /// Create or delete alarms through the API.
    WriteAlarms,
    /// Scale a group by hand: set its desired capacity, execute a policy.
    Scale,
    /// Take a backup.
    Backup,
    /// Read the audit trail.
    ReadAudit,
    /// Administer tokens.
    ManageTokens,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 15] = [
        Permission::PushMetrics,
        Permission::ReadMetrics,
        Permission::ReadAlarms,
        Permission::ReadGroups,
        Permission::ReadNotifications,
        Permission::ViewDashboard,
        Permission::ReadTelemetry,
        Permission::Reload,
        Permission::SetAlarmState,
        Permission::ToggleAlarmActions,
        Permission::WriteAlarms,
        Permission::Scale,
        Permission::Backup,
        Permission::ReadAudit,
        Permission::ManageTokens,
    ];

    /// The least role that grants it (`admin` grants everything).
    pub fn needs(self) -> Role {
        match self {
            Permission::PushMetrics => Role::Agent,
            Permission::ReadMetrics
            | Permission::ReadAlarms
            | Permission::ReadGroups
            | Permission::ReadNotifications
            | Permission::ViewDashboard
            | Permission::ReadTelemetry => Role::Viewer,
            Permission::Reload
            | Permission::SetAlarmState
            | Permission::ToggleAlarmActions
            | Permission::WriteAlarms
            | Permission::Scale => Role::Operator,
            Permission::Backup | Permission::ReadAudit | Permission::ManageTokens => Role::Admin,
        }
    }

    /// What it lets one do, as messages say it ("push metrics").
    pub fn describe(self) -> &'static str {
        match self {
            Permission::PushMetrics => "push metrics",
            Permission::ReadMetrics => "read metrics",
            Permission::ReadAlarms => "read alarms",
            Permission::ReadGroups => "read scaling groups",
            Permission::ReadNotifications => "read notifications",
            Permission::ViewDashboard => "view the dashboard",
            Permission::ReadTelemetry => "read the server's metrics",
            Permission::Reload => "reload the configuration",
            Permission::SetAlarmState => "set alarm states",
            Permission::ToggleAlarmActions => "enable or disable alarm actions",
            Permission::WriteAlarms => "create or delete alarms",
            Permission::Scale => "scale groups by hand",
            Permission::Backup => "take backups",
            Permission::ReadAudit => "read the audit trail",
            Permission::ManageTokens => "administer tokens",
        }
    }

    /// Its label in metrics (`push_metrics`).
    pub fn label(self) -> &'static str {
        match self {
            Permission::PushMetrics => "push_metrics",
            Permission::ReadMetrics => "read_metrics",
            Permission::ReadAlarms => "read_alarms",
            Permission::ReadGroups => "read_groups",
            Permission::ReadNotifications => "read_notifications",
            Permission::ViewDashboard => "view_dashboard",
            Permission::ReadTelemetry => "read_telemetry",
            Permission::Reload => "reload",
            Permission::SetAlarmState => "set_alarm_state",
            Permission::ToggleAlarmActions => "toggle_alarm_actions",
            Permission::WriteAlarms => "write_alarms",
            Permission::Scale => "scale",
            Permission::Backup => "backup",
            Permission::ReadAudit => "read_audit",
            Permission::ManageTokens => "manage_tokens",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_issue_lists() {
        for p in Permission::ALL {
            assert!(Role::Admin.allows(p), "admin may {}", p.describe());
        }
        assert!(Role::Agent.allows(Permission::PushMetrics));
        for p in Permission::ALL
            .into_iter()
            .filter(|p| *p != Permission::PushMetrics)
        {
            assert!(!Role::Agent.allows(p), "agent may not {}", p.describe());
        }
        assert!(!Role::Viewer.allows(Permission::PushMetrics));
        assert!(!Role::Operator.allows(Permission::PushMetrics));
        assert!(Role::Viewer.allows(Permission::ViewDashboard));
        assert!(!Role::Viewer.allows(Permission::Reload));
        assert!(Role::Operator.allows(Permission::Reload));
        assert!(Role::Operator.allows(Permission::Scale));
        assert!(!Role::Operator.allows(Permission::Backup));
        assert!(!Role::Operator.allows(Permission::ReadAudit));
    }

    #[test]
    fn roles_parse_by_name() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!(
            "root"
                .parse::<Role>()
                .unwrap_err()
                .contains("agent, viewer")
        );
    }
}
