//! Namespace scopes: the namespaces a token may push to and read.

use std::fmt;

/// Patterns in a scope at most.
pub const MAX_PATTERNS: usize = 256;

/// A list of namespace names or prefixes (`App/*`); a namespace is allowed when one matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespaces {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Namespaces {
    /// A scope of `patterns`: exact names, or prefixes ending in `*` (`*` alone allows all).
    ///
    /// # Errors
    /// An empty list, an empty pattern, a `*` other than at the end, or too many patterns.
    pub fn new(patterns: Vec<String>) -> Result<Self, String> {
        if patterns.is_empty() {
            return Err(
                "namespaces must list at least one name or prefix (leave it out for all)".into(),
            );
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(format!(
                "namespaces lists {} patterns, at most {MAX_PATTERNS}",
                patterns.len()
            ));
        }
        let patterns = patterns
            .into_iter()
            .map(|p| {
                if p.is_empty() || p.len() > 255 {
                    return Err("namespaces: a pattern must be 1 to 255 characters".to_string());
                }
                match p.find('*') {
                    None => Ok(Pattern::Exact(p)),
                    Some(i) if i == p.len() - 1 => Ok(Pattern::Prefix(p[..i].to_string())),
                    Some(_) => Err(format!(
                        "namespaces: {p:?} has a `*` before its end; a pattern is a name or a prefix ending in `*`"
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Namespaces { patterns })
    }

    /// The patterns as written (`App/*`).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| match p {
                Pattern::Exact(n) => n.clone(),
                Pattern::Prefix(n) => format!("{n}*"),
            })
            .collect()
    }

    /// Whether `namespace` is in the scope.
    pub fn allows(&self, namespace: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::Exact(n) => n == namespace,
            Pattern::Prefix(prefix) => namespace.starts_with(prefix.as_str()),
        })
    }
}

impl fmt::Display for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match p {
                Pattern::Exact(n) => f.write_str(n)?,
                Pattern::Prefix(n) => write!(f, "{n}*")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_match() {
        let n = Namespaces::new(vec!["Web".into(), "App/*".into()]).unwrap();
        assert!(n.allows("Web"));
        assert!(!n.allows("Web2"));
        assert!(n.allows("App/checkout"));
        assert!(n.allows("App/"));
        assert!(!n.allows("Ap"));
        assert_eq!(n.to_string(), "Web, App/*");
        assert!(
            Namespaces::new(vec!["*".into()])
                .unwrap()
                .allows("anything")
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Namespaces::new(vec![]).is_err());
        assert!(Namespaces::new(vec!["".into()]).is_err());
        assert!(Namespaces::new(vec!["A*B".into()]).is_err());
        assert!(Namespaces::new(vec!["x".into(); MAX_PATTERNS + 1]).is_err());
    }
}
