//! CloudWatch's `StandardUnit`: data with different units are aggregated separately.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! units {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A CloudWatch `StandardUnit`. `None` is the default when a datum names no unit.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
        #[allow(missing_docs)]
        pub enum Unit {
            $($variant,)+
            #[default]
            None,
        }

        impl Unit {
            /// Every unit, in CloudWatch's order.
            pub const ALL: &'static [Unit] = &[$(Unit::$variant,)+ Unit::None];

            /// The CloudWatch spelling, e.g. `Bytes/Second`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Unit::$variant => $name,)+
                    Unit::None => "None",
                }
            }
        }
    };
}

units! {
    Seconds => "Seconds",
    Microseconds => "Microseconds",
    Milliseconds => "Milliseconds",
    Bytes => "Bytes",
    Kilobytes => "Kilobytes",
    Megabytes => "Megabytes",
    Gigabytes => "Gigabytes",
    Terabytes => "Terabytes",
    Bits => "Bits",
    Kilobits => "Kilobits",
    Megabits => "Megabits",
    Gigabits => "Gigabits",
    Terabits => "Terabits",
    Percent => "Percent",
    Count => "Count",
    BytesPerSecond => "Bytes/Second",
    KilobytesPerSecond => "Kilobytes/Second",
    MegabytesPerSecond => "Megabytes/Second",
    GigabytesPerSecond => "Gigabytes/Second",
    TerabytesPerSecond => "Terabytes/Second",
    BitsPerSecond => "Bits/Second",
    KilobitsPerSecond => "Kilobits/Second",
    MegabitsPerSecond => "Megabits/Second",
    GigabitsPerSecond => "Gigabits/Second",
    TerabitsPerSecond => "Terabits/Second",
    CountPerSecond => "Count/Second",
}

/// The error for a unit name that CloudWatch does not define.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a CloudWatch StandardUnit (Seconds, Milliseconds, Bytes, Percent, Count, Count/Second, None, ...), got {0}"
)]
pub struct UnknownUnit(
    /// The unit as found, quoted, at most a bounded prefix of it ([`crate::quote::quote`]).
    pub String,
);

impl FromStr for Unit {
    type Err = UnknownUnit;

    /// Parses CloudWatch's spelling; the empty string is `None`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Unit::None);
        }
        Unit::ALL
            .iter()
            .copied()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| UnknownUnit(crate::quote::quote(s)))
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_27_units_and_they_round_trip() {
        assert_eq!(Unit::ALL.len(), 27);
        for u in Unit::ALL {
            assert_eq!(u.as_str().parse::<Unit>(), Ok(*u));
        }
        assert_eq!("".parse::<Unit>(), Ok(Unit::None));
        assert!("Furlongs".parse::<Unit>().is_err());
        assert!(
            "seconds".parse::<Unit>().is_err(),
            "names are case-sensitive"
        );
    }

    #[test]
    fn an_unknown_unit_is_quoted_only_in_part() {
        let long = "x".repeat(100_000);
        let message = long.parse::<Unit>().unwrap_err().to_string();
        assert!(message.len() < 300, "{} bytes", message.len());
        assert!(message.contains("(100000 bytes)"), "{message}");
        let message = "Furlongs".parse::<Unit>().unwrap_err().to_string();
        assert!(message.ends_with("got \"Furlongs\""), "{message}");
    }
}
