//! Series identity: namespace + metric name + the set of dimensions.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One dimension: a name/value pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dimension {
    /// Dimension name, e.g. `InstanceId`.
    pub name: String,
    /// Dimension value, e.g. `i-0abc`.
    pub value: String,
}

impl Dimension {
    /// A dimension from a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Dimension {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The identity of a series. Dimensions are kept sorted by name, so two keys built from
/// the same dimensions in a different order are equal.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    namespace: Arc<str>,
    metric_name: Arc<str>,
    dimensions: Arc<[Dimension]>,
}

impl SeriesKey {
    /// A key; the dimensions are sorted by name here. Validation (lengths, duplicate
    /// names, characters) is [`crate::validate`]'s job.
    pub fn new(
        namespace: impl Into<Arc<str>>,
        metric_name: impl Into<Arc<str>>,
        mut dimensions: Vec<Dimension>,
    ) -> Self {
        dimensions.sort_unstable();
        SeriesKey {
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions: dimensions.into(),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The metric name.
    pub fn metric_name(&self) -> &str {
        &self.metric_name
    }

    /// The dimensions, sorted by name.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// The value of the dimension `name`, if the key has it.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }
}

impl fmt::Debug for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.metric_name)?;
        if !self.dimensions.is_empty() {
            f.write_str("{")?;
            for (i, d) in self.dimensions.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{}={}", d.name, d.value)?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_order_does_not_matter() {
        let a = SeriesKey::new(
            "App",
            "Latency",
            vec![Dimension::new("Host", "a"), Dimension::new("AZ", "1")],
        );
        let b = SeriesKey::new(
            "App",
            "Latency",
            vec![Dimension::new("AZ", "1"), Dimension::new("Host", "a")],
        );
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "App/Latency{AZ=1,Host=a}");
        assert_eq!(a.dimension("Host"), Some("a"));
        assert_eq!(a.dimension("Nope"), None);
    }
}
