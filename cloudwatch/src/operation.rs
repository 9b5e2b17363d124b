//! CloudWatch's operations (service model `monitoring`, API version 2010-08-01).

use std::fmt;

macro_rules! operations {
    ($($name:ident),+ $(,)?) => {
        /// An operation of the CloudWatch service model. Thermostat decodes the metric
        /// operations ([`Operation::is_served`]); the others are known so that they are
        /// refused by name rather than as unknown.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Operation {
            $($name,)+
        }

        impl Operation {
            /// Every operation of the service model.
            pub const ALL: &'static [Operation] = &[$(Operation::$name,)+];

            /// The operation's name, as `Action`, `X-Amz-Target` and the CBOR path spell it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)+
                }
            }

            /// The operation named `name` (case-sensitive, as CloudWatch).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(Operation::$name),)+
                    _ => None,
                }
            }
        }
    };
}

operations! {
    AssociateDatasetKmsKey,
    DeleteAlarmMuteRule,
    DeleteAlarms,
    DeleteAnomalyDetector,
    DeleteDashboards,
    DeleteInsightRules,
    DeleteMetricStream,
    DescribeAlarmContributors,
    DescribeAlarmHistory,
    DescribeAlarms,
    DescribeAlarmsForMetric,
    DescribeAnomalyDetectors,
    DescribeInsightRules,
    DisableAlarmActions,
    DisableInsightRules,
    DisassociateDatasetKmsKey,
    EnableAlarmActions,
    EnableInsightRules,
    GetAlarmMuteRule,
    GetDashboard,
    GetDataset,
    GetInsightRuleReport,
    GetMetricData,
    GetMetricStatistics,
    GetMetricStream,
    GetMetricWidgetImage,
    GetOTelEnrichment,
    ListAlarmMuteRules,
    ListDashboards,
    ListManagedInsightRules,
    ListMetricStreams,
    ListMetrics,
    ListTagsForResource,
    PutAlarmMuteRule,
    PutAnomalyDetector,
    PutCompositeAlarm,
    PutDashboard,
    PutInsightRule,
    PutLogAlarm,
    PutManagedInsightRules,
    PutMetricAlarm,
    PutMetricData,
    PutMetricStream,
    SetAlarmState,
    StartMetricStreams,
    StartOTelEnrichment,
    StopMetricStreams,
    StopOTelEnrichment,
    TagResource,
    UntagResource,
}

impl Operation {
    /// Whether Thermostat decodes this operation's requests (the metric operations, the
    /// alarm operations and alarm tags, so far).
    pub const fn is_served(self) -> bool {
        matches!(
            self,
            Operation::PutMetricData
                | Operation::GetMetricStatistics
                | Operation::ListMetrics
                | Operation::GetMetricData
                | Operation::PutMetricAlarm
                | Operation::PutCompositeAlarm
                | Operation::DescribeAlarms
                | Operation::DescribeAlarmsForMetric
                | Operation::DeleteAlarms
                | Operation::SetAlarmState
                | Operation::EnableAlarmActions
                | Operation::DisableAlarmActions
                | Operation::DescribeAlarmHistory
                | Operation::ListTagsForResource
                | Operation::TagResource
                | Operation::UntagResource
                | Operation::PutAnomalyDetector
                | Operation::DeleteAnomalyDetector
                | Operation::DescribeAnomalyDetectors
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
