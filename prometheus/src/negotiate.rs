//! Content negotiation: which remote write version a request's headers announce.

use std::fmt;

/// The remote write protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Remote write 1.0: `prometheus.WriteRequest`.
    V1,
    /// Remote write 2.0: `io.prometheus.write.v2.Request`.
    V2,
}

/// Headers that announce neither version: the message names what is supported (the HTTP
/// layer answers 415 Unsupported Media Type with it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

const SUPPORTED: &str = "supported: Content-Type application/x-protobuf (remote write 1.0, \
    also with ;proto=prometheus.WriteRequest) or \
    application/x-protobuf;proto=io.prometheus.write.v2.Request (remote write 2.0), \
    with Content-Encoding snappy";

/// Which version the `Content-Type` and `Content-Encoding` headers announce:
/// `application/x-protobuf` (or no `Content-Type`, or `;proto=prometheus.WriteRequest`) is
/// 1.0; `application/x-protobuf;proto=io.prometheus.write.v2.Request` is 2.0. The media type,
/// parameter names and values are compared without regard to case, spaces around them are
/// ignored, a parameter value may be quoted, and parameters other than `proto` are ignored.
/// `Content-Encoding` must be absent or `snappy`.
///
/// # Errors
/// [`Unsupported`], naming the header and what is supported.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Version, Unsupported> {
    if let Some(encoding) = content_encoding {
        let encoding = encoding.trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("snappy") {
            return Err(Unsupported(format!(
                "Content-Encoding {encoding:?} is not supported; {SUPPORTED}"
            )));
        }
    }
    let Some(content_type) = content_type.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Version::V1);
    };
    let unsupported = || {
        Unsupported(format!(
            "Content-Type {content_type:?} is not supported; {SUPPORTED}"
        ))
    };
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(unsupported());
    }
    let mut version = Version::V1;
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            if parameter.trim().is_empty() {
                continue;
            }
            return Err(unsupported());
        };
        if !name.trim().eq_ignore_ascii_case("proto") {
            continue;
        }
        let value = value.trim().trim_matches('"').trim();
        version = if value.eq_ignore_ascii_case("prometheus.WriteRequest") {
            Version::V1
        } else if value.eq_ignore_ascii_case("io.prometheus.write.v2.Request") {
            Version::V2
        } else {
            return Err(unsupported());
        };
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_by_content_type() {
        let v1 = [
            None,
            Some(""),
            Some("application/x-protobuf"),
            Some("Application/X-Protobuf"),
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some("application/x-protobuf ; proto = \"prometheus.WriteRequest\""),
            Some("application/x-protobuf; charset=utf-8"),
        ];
        for t in v1 {
            assert_eq!(negotiate(t, None), Ok(Version::V1), "{t:?}");
        }
        let v2 = [
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "application/x-protobuf; PROTO=io.prometheus.write.v2.request",
            " application/x-protobuf ;  proto=\"io.prometheus.write.v2.Request\" ",
        ];
        for t in v2 {
            assert_eq!(negotiate(Some(t), Some("snappy")), Ok(Version::V2), "{t:?}");
        }
    }

    #[test]
    fn others_are_unsupported_and_say_what_is() {
        for t in [
            "application/json",
            "text/plain",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            "application/x-protobuf;garbage",
        ] {
            let e = negotiate(Some(t), None).unwrap_err();
            assert!(e.to_string().contains("is not supported"), "{e}");
            assert!(
                e.to_string()
                    .contains("proto=io.prometheus.write.v2.Request"),
                "{e}"
            );
        }
        assert_eq!(negotiate(None, Some("SNAPPY")), Ok(Version::V1));
        assert_eq!(negotiate(None, Some(" ")), Ok(Version::V1));
        let e = negotiate(None, Some("gzip")).unwrap_err();
        assert!(
            e.0.starts_with("Content-Encoding \"gzip\" is not supported"),
            "{e}"
        );
    }
}
