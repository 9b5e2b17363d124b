//! Refusing cross-site requests to the state-changing endpoints a browser can reach.
//!
//! A web page open in an operator's browser can send a request to the server (on loopback or
//! the operator's network) with an HTML form or `fetch` in `no-cors` mode: the browser sends
//! it, only the answer is hidden from the page. Such a request is recognisable: the browser
//! says where it comes from (`Origin`, `Referer`, `Sec-Fetch-Site`), and without CORS a page
//! can only send the form content types (`application/x-www-form-urlencoded`,
//! `multipart/form-data`, `text/plain`). [`refuse_cross_site`] answers `403` to any of those,
//! and lets through requests that say they come from the server's own pages, and clients that
//! say nothing of the kind (curl, the CLI, scripts).
//!
//! It is a route layer of the router of state-changing endpoints only (`lib.rs`). APIs whose
//! every request is signed (the CloudWatch-compatible API, SigV4) and the read-only Prometheus
//! query endpoints, which clients send as form POSTs, belong on other routers, without it.

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Content types an HTML form (or a CORS "simple request") can send cross-site.
pub const FORM_CONTENT_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// Middleware: `403` JSON for a request from another site, else the route.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    if let Err(why) = check(req.headers(), host.as_deref()) {
        tracing::info!(path = %req.uri().path(), why, "Refused a cross-site request.");
        return ApiError::Forbidden(format!(
            "cross-site request refused: {why}; state-changing endpoints accept requests from \
             this server's own pages or from clients that send no Origin, as JSON"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Why the request is cross-site, if it is.
///
/// # Errors
/// The reason, without quoting the request's values beyond a bounded prefix.
pub fn check(headers: &HeaderMap, host: Option<&str>) -> Result<(), &'static str> {
    // Every value of a header counts: a request with two is judged by the worse one.
    let values = |name: header::HeaderName| {
        headers
            .get_all(name)
            .into_iter()
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .collect::<Vec<&str>>()
    };
    if values(header::HeaderName::from_static("sec-fetch-site"))
        .iter()
        .any(|site| !matches!(*site, "same-origin" | "none"))
    {
        return Err("the browser says it comes from another site (Sec-Fetch-Site)");
    }
    let is_form = |ct: &&str| {
        let media = ct.split(';').next().unwrap_or("").trim();
        FORM_CONTENT_TYPES
            .iter()
            .any(|f| media.eq_ignore_ascii_case(f))
    };
    if values(header::CONTENT_TYPE).iter().any(is_form) {
        return Err("a form content type, which any web page can send");
    }
    let same = |url: &&str| match (authority_of(url), host) {
        (Some(a), Some(h)) => same_authority(a, h),
        _ => false,
    };
    let origins = values(header::ORIGIN);
    if !origins.is_empty() {
        return if origins.iter().all(same) {
            Ok(())
        } else {
            Err("the Origin is another site than this server's Host")
        };
    }
    if !values(header::REFERER).iter().all(same) {
        return Err("the Referer is another site than this server's Host");
    }
    Ok(())
}

/// The `host[:port]` of an absolute `http(s)` URL (`None` for `null` and anything else).
fn authority_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // `user:password@` would let `http://host@evil.example` pass a prefix comparison.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(authority)
}

/// Whether two `host[:port]` name the same server (case-insensitive; a missing port is 80).
fn same_authority(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.to_ascii_lowercase();
        match s.strip_suffix(":80") {
            Some(bare) => bare.to_owned(),
            None => s,
        }
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, HeaderValue::from_static(v));
        }
        h
    }

    const HOST: Option<&str> = Some("127.0.0.1:8080");

    #[test]
    fn own_pages_and_clients_without_origin_pass() {
        for ok in [
            headers(&[]),
            headers(&[("content-type", "application/json")]),
            headers(&[("origin", "http://127.0.0.1:8080")]),
            headers(&[
                ("origin", "https://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ]),
            headers(&[("referer", "http://127.0.0.1:8080/alarms/x?range=1h")]),
            headers(&[("sec-fetch-site", "none")]),
        ] {
            assert_eq!(check(&ok, HOST), Ok(()), "{ok:?}");
        }
        assert_eq!(
            check(
                &headers(&[("origin", "http://localhost")]),
                Some("LOCALHOST:80")
            ),
            Ok(())
        );
    }

    #[test]
    fn other_sites_and_forms_are_refused() {
        for bad in [
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:8081")]),
            headers(&[("origin", "http://127.0.0.1:8080@evil.example")]),
            headers(&[("referer", "http://evil.example/page")]),
            headers(&[("referer", "http://127.0.0.1:8080.evil.example/")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[("content-type", "Multipart/Form-Data; boundary=x")]),
            headers(&[("content-type", "text/plain;charset=UTF-8")]),
            headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("content-type", "text/plain"),
            ]),
        ] {
            assert!(check(&bad, HOST).is_err(), "{bad:?}");
        }
        assert!(
            check(&headers(&[("origin", "http://127.0.0.1:8080")]), None).is_err(),
            "an Origin and no Host cannot be checked"
        );
        let mut two = headers(&[("content-type", "application/json")]);
        two.append("content-type", HeaderValue::from_static("text/plain"));
        assert!(check(&two, HOST).is_err(), "the worse of two values counts");
        let mut two = headers(&[("origin", "http://127.0.0.1:8080")]);
        two.append("origin", HeaderValue::from_static("http://evil.example"));
        assert!(check(&two, HOST).is_err());
    }
}
