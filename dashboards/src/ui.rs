//! The web dashboard's pages and static assets, all compiled into the binary.
//!
//! Every page (`/`, `/alarms/{name}`, `/groups/{name}`, `/explore`) is the same HTML shell;
//! `assets/app.js` picks the page from the path. Assets are served from memory with their
//! content type and an `ETag`. The shell refers to its assets with `?v=<asset version>` (a
//! hash of every asset): such requests are cacheable for a year, because a new binary with
//! other assets has another version. Everything else (the shell itself, module imports without
//! the version) is `no-cache`: the browser revalidates and usually gets a `304`. The sign-in
//! page (`/signin`, served by `session.rs`) is a second shell, `assets/signin.html`.
//!
//! [`security_headers`] (on every response) sets `X-Content-Type-Options`, `Referrer-Policy`
//! and `X-Frame-Options`, and on HTML the `Content-Security-Policy` [`SECURITY_POLICY`]: no
//! inline script or style, nothing from elsewhere.

use std::sync::LazyLock;

use axum::extract::{Path, Query as Params};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;

/// The uPlot release vendored in `assets/vendor/` (MIT, see `assets/vendor/uPlot.LICENSE`).
pub const UPLOT_VERSION: &str = "1.6.32";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// One embedded file, served at `/assets/<path>`.
#[derive(Debug)]
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../assets/", $path)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("common.js", JS),
    asset!("chart.js", JS),
    asset!("overview.js", JS),
    asset!("alarm.js", JS),
    asset!("group.js", JS),
    asset!("explore.js", JS),
    asset!("cluster.js", JS),
    asset!("signin.js", JS),
    asset!("style.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/uPlot.LICENSE", TEXT),
];

const SHELL: &str = include_str!("../assets/index.html");
const SIGN_IN_SHELL: &str = include_str!("../assets/signin.html");

/// FNV-1a, 64 bits: a stable content hash for `ETag`s and the asset version (not for security).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A hash of every asset: the `v` query parameter of versioned asset URLs.
static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let bodies: Vec<&[u8]> = ASSETS.iter().map(|a| a.body).collect();
    format!("{:016x}", fnv1a(&bodies))
});

/// `shell` with the asset version filled in, and its `ETag`.
fn versioned(shell: &str) -> (String, String) {
    let html = shell.replace("{{version}}", &ASSET_VERSION);
    let etag = format!("\"{:016x}\"", fnv1a(&[html.as_bytes()]));
    (html, etag)
}

/// The HTML shell with the asset version filled in, and its `ETag`.
static PAGE: LazyLock<(String, String)> = LazyLock::new(|| versioned(SHELL));

/// The sign-in page, likewise.
static SIGN_IN_PAGE: LazyLock<(String, String)> = LazyLock::new(|| versioned(SIGN_IN_SHELL));

static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{:016x}\"", fnv1a(&[a.body])))
        .collect()
});

/// The asset version that versioned URLs carry (`/assets/app.js?v=...`).
pub fn asset_version() -> &'static str {
    &ASSET_VERSION
}

/// The `Content-Security-Policy` of every HTML answer: the server's own scripts, style
/// sheets, images and connections only; no inline script or style, no `eval`, no plugins, no
/// framing. (uPlot and the pages position elements through the CSSOM, `el.style.left = ...`,
/// which `style-src 'self'` allows; a `style="..."` attribute would be refused.)
pub const SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The `Referrer-Policy` of every answer: full URLs only to this server's own pages.
pub const REFERRER_POLICY: &str = "same-origin";

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn respond(
    headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let etag = HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::ETAG, etag.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if not_modified(headers, etag.to_str().unwrap_or_default()) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// `GET /`, `/alarms/{name}`, `/groups/{name}`, `/explore`: the HTML shell.
pub(crate) async fn page(headers: HeaderMap) -> Response {
    let (html, etag) = &*PAGE;
    respond(&headers, HTML, etag, "no-cache", html.as_bytes())
}

/// The sign-in page's shell (`GET /signin`, routed by `session.rs`).
pub(crate) fn sign_in_page(headers: &HeaderMap) -> Response {
    let (html, etag) = &*SIGN_IN_PAGE;
    respond(headers, HTML, etag, "no-cache", html.as_bytes())
}

/// Whether an answer is a document a browser renders and runs scripts in (HTML, SVG): what
/// a CSP governs.
fn is_document(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case(SVG)
        })
}

/// Middleware on every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy`,
/// `X-Frame-Options: DENY`, and on HTML (and SVG) the `Content-Security-Policy`
/// [`SECURITY_POLICY`]. (A `304` has no type; the browser keeps the cached answer's headers.)
pub async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    let html = is_document(&resp);
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(REFERRER_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SECURITY_POLICY),
        );
    }
    resp
}

#[derive(Deserialize)]
pub(crate) struct AssetParams {
    v: Option<String>,
}

/// `GET /assets/{*path}`.
pub(crate) async fn asset(
    Path(path): Path<String>,
    Params(p): Params<AssetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (i, asset) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, a)| a.path == path)
        .ok_or_else(|| ApiError::NotFound(format!("no such asset: /assets/{path}")))?;
    let cache = if p.v.as_deref() == Some(asset_version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(respond(
        &headers,
        asset.content_type,
        &ETAGS[i],
        cache,
        asset.body,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use thermostat_metrics::{ManualClock, Store, Telemetry, Timestamp};
    use tower::ServiceExt as _;

    use super::*;

    async fn get(uri: &str, if_none_match: Option<&str>) -> Response {
        let state = crate::ApiState {
            store: Arc::new(Store::new(1)),
            telemetry: Arc::new(Telemetry::new()),
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(0))),
            ready: Arc::new(AtomicBool::new(true)),
            alarms: None,
            groups: None,
            notifications: None,
            admin: None,
            queries: Default::default(),
            access: Arc::new(thermostat_auth::Access::open()),
            audit: None,
            otlp: None,
            remote_write: None,
            cloudwatch: None,
            cluster: None,
        };
        let mut req = Request::get(uri);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        crate::router(state)
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header_of(resp: &Response, name: header::HeaderName) -> &str {
        resp.headers()
            .get(&name)
            .map_or("", |v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn pages_are_the_html_shell_and_assets_have_their_types_and_caching() {
        for path in [
            "/",
            "/alarms/web-hot",
            "/alarms/lat%5BHost%3Da%5D",
            "/groups/web",
            "/explore",
            "/cluster",
        ] {
            let resp = get(path, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&resp, header::CONTENT_TYPE), HTML, "{path}");
            assert_eq!(header_of(&resp, header::CACHE_CONTROL), "no-cache");
            assert_eq!(
                header_of(&resp, header::CONTENT_SECURITY_POLICY),
                SECURITY_POLICY
            );
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], PAGE.0.as_bytes());
        }
        let v = asset_version();
        for (path, want) in [
            ("app.js", JS),
            ("chart.js", JS),
            ("style.css", CSS),
            ("favicon.svg", SVG),
            ("vendor/uPlot.iife.min.js", JS),
            ("vendor/uPlot.min.css", CSS),
            ("vendor/uPlot.LICENSE", TEXT),
        ] {
            let resp = get(&format!("/assets/{path}"), None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&resp, header::CONTENT_TYPE), want, "{path}");
            assert_eq!(
                header_of(&resp, header::CACHE_CONTROL),
                "no-cache",
                "{path}"
            );
            assert_eq!(header_of(&resp, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            let etag = header_of(&resp, header::ETAG).to_owned();
            assert!(etag.starts_with('"') && etag.len() > 10, "{path}: {etag}");
            // Revalidation: the same ETag is a 304 without a body.
            let again = get(&format!("/assets/{path}"), Some(&etag)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
            let body = again.into_body().collect().await.unwrap().to_bytes();
            assert!(body.is_empty());
            let other = get(&format!("/assets/{path}"), Some("\"other\"")).await;
            assert_eq!(other.status(), StatusCode::OK);
            // The versioned URL the shell uses is cacheable for good.
            let versioned = get(&format!("/assets/{path}?v={v}"), None).await;
            assert_eq!(
                header_of(&versioned, header::CACHE_CONTROL),
                "public, max-age=31536000, immutable"
            );
            let stale = get(&format!("/assets/{path}?v=0000"), None).await;
            assert_eq!(header_of(&stale, header::CACHE_CONTROL), "no-cache");
        }
        let missing = get("/assets/nope.js", None).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            header_of(&missing, header::CONTENT_TYPE),
            "application/json"
        );
    }

    #[tokio::test]
    async fn every_answer_has_the_security_headers_and_html_a_strict_csp() {
        for path in [
            "/",
            "/signin",
            "/api/v1/session",
            "/assets/app.js",
            "/assets/favicon.svg",
            "/healthz",
            "/nope",
        ] {
            let resp = get(path, None).await;
            assert_eq!(
                header_of(&resp, header::X_CONTENT_TYPE_OPTIONS),
                "nosniff",
                "{path}"
            );
            assert_eq!(header_of(&resp, header::X_FRAME_OPTIONS), "DENY", "{path}");
            assert_eq!(
                header_of(&resp, header::REFERRER_POLICY),
                REFERRER_POLICY,
                "{path}"
            );
            let document = ["/", "/assets/favicon.svg"].contains(&path);
            assert_eq!(
                resp.headers().contains_key(header::CONTENT_SECURITY_POLICY),
                document,
                "{path}"
            );
        }
        // The policy: scripts only from this server, never inline or evaluated; no framing.
        let directive = |name: &str| {
            SECURITY_POLICY
                .split(';')
                .map(str::trim)
                .find(|d| d.split(' ').next() == Some(name))
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(directive("script-src"), "script-src 'self'");
        assert_eq!(directive("style-src"), "style-src 'self'");
        assert_eq!(directive("frame-ancestors"), "frame-ancestors 'none'");
        assert_eq!(directive("object-src"), "object-src 'none'");
        assert!(!SECURITY_POLICY.contains("unsafe"));
    }

    #[test]
    fn no_page_has_inline_script_or_style() {
        for (name, html) in [("index.html", SHELL), ("signin.html", SIGN_IN_SHELL)] {
            for tag in html.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap();
                assert!(open.contains("src=\"/assets/"), "{name}: an inline script");
                assert!(
                    tag[open.len() + 1..].trim_start().starts_with("</script>"),
                    "{name}: a script with a body"
                );
            }
            for bad in [
                "<style",
                "style=",
                "onclick",
                "onload",
                "onsubmit",
                "javascript:",
            ] {
                assert!(!html.contains(bad), "{name} has {bad}");
            }
        }
        // Scripts set styles through the CSSOM only (`el.style.x = ...`), which the CSP allows;
        // a `style` attribute or HTML from strings would be refused or unsafe.
        for a in ASSETS
            .iter()
            .filter(|a| a.path.ends_with(".js") && !a.path.starts_with("vendor/"))
        {
            let text = std::str::from_utf8(a.body).unwrap();
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "setAttribute('style'",
                "style:",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(bad), "{} uses {bad}", a.path);
            }
        }
    }

    #[test]
    fn every_asset_the_shell_and_modules_refer_to_is_embedded() {
        let html = &PAGE.0;
        let mut referred: Vec<String> = [html.as_str(), SIGN_IN_PAGE.0.as_str()]
            .iter()
            .flat_map(|page| page.split("/assets/").skip(1))
            .map(|s| s.split(['?', '"']).next().unwrap().to_owned())
            .collect();
        // Module imports: `from './x.js'`.
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            referred.extend(
                text.split("from './")
                    .skip(1)
                    .map(|s| s.split('\'').next().unwrap().to_owned()),
            );
            referred.extend(
                text.split("import('./")
                    .skip(1)
                    .map(|s| s.split('\'').next().unwrap().to_owned()),
            );
        }
        assert!(referred.len() > 8, "{referred:?}");
        for r in &referred {
            assert!(
                ASSETS.iter().any(|a| a.path == r),
                "{r} is referred to but not embedded"
            );
        }
        assert!(referred.iter().any(|r| r == "signin.js"));
        for page in [html, &SIGN_IN_PAGE.0] {
            assert!(!page.contains("{{version}}"));
            assert!(page.contains(&format!("?v={}", asset_version())));
        }
    }

    #[test]
    fn the_vendored_uplot_is_the_documented_version() {
        let js = ASSETS
            .iter()
            .find(|a| a.path == "vendor/uPlot.iife.min.js")
            .unwrap();
        let banner = format!("(v{UPLOT_VERSION}) */");
        assert!(
            String::from_utf8_lossy(&js.body[..200]).contains(&banner),
            "the vendored uPlot is not {UPLOT_VERSION}"
        );
        let license = ASSETS
            .iter()
            .find(|a| a.path == "vendor/uPlot.LICENSE")
            .unwrap();
        assert!(std::str::from_utf8(license.body).unwrap().contains("MIT"));
        let docs = include_str!("../../docs/dashboard.md");
        assert!(
            docs.contains(&format!("uPlot {UPLOT_VERSION}")),
            "docs/dashboard.md names another uPlot version"
        );
    }
}
