//! Thermostat's HTTP API (axum): statistics and series as JSON, health, self-telemetry, and
//! the web dashboard.
//!
//! # What this crate owns
//! The axum [`Router`] built by [`router`] over read-only views of the engine ([`ApiState`]),
//! the JSON error format (`{"error": {"code", "message", "field"}}`), and the web dashboard:
//! its pages and assets (HTML, JS, CSS and the vendored uPlot, embedded in the binary) and
//! the JSON its pages poll (`/api/v1/dashboard/...`). `docs/dashboard.md` describes it.
//!
//! # Invariants
//! - Handlers never block on IO other than their own response; they read the store through
//!   its shard locks and never hold one across an `.await`.
//! - The dashboard needs nothing at run time but this binary: no build step, no internet.
//! - A part of the server that is not enabled (alarms, groups, notifications) is a 404 JSON
//!   error in its own endpoints and `null` in the dashboard's overview; pages show it as such.
//!
//! # Layout
//! `api.rs` (statistics and series), `alarms.rs` and `actions.rs` (engine ports and their
//! endpoints), `views.rs` (the dashboard pages' data), `ui.rs` (pages, embedded assets from
//! `assets/`, security headers), `access.rs` (who is calling: request ids, authentication,
//! each route's permission, audit records), `session.rs` (dashboard sign-in and sessions),
//! `audit.rs` (`GET /api/v1/audit`, `GET /api/v1/tokens`), `otlp.rs` (OTLP/HTTP `POST /v1/metrics`), `error.rs` (the one error type and the middleware that
//! makes every error answer JSON), `cross_site.rs` (refusing cross-site requests to
//! state-changing endpoints), this file (routes, health, `/metrics`).

#![warn(missing_docs)]

pub mod access;
pub mod actions;
pub mod admin;
pub mod alarms;
pub mod api;
mod audit;
pub mod cloudwatch;
pub mod cluster;
pub mod cross_site;
pub mod error;
pub mod export;
mod metric_data;
pub mod otlp;
mod promql;
pub mod remote_write;
pub mod session;
pub mod ui;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post, put};
pub use error::ApiError;
use thermostat_auth::{Access, AuditTrail, Permission};
use thermostat_metrics::{Clock, Store, Telemetry};

/// What the HTTP handlers read.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The series store.
    pub store: Arc<Store>,
    /// Self-telemetry.
    pub telemetry: Arc<Telemetry>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Set once start-up (snapshot loading) is done; `/readyz` answers 200 only then.
    pub ready: Arc<AtomicBool>,
    /// The alarm engine, when alarms are enabled.
    pub alarms: Option<Arc<dyn alarms::AlarmApi>>,
    /// Scaling groups, when scaling is enabled.
    pub groups: Option<Arc<dyn actions::GroupApi>>,
    /// Notifications, when they are enabled.
    pub notifications: Option<Arc<dyn actions::NotificationApi>>,
    /// Administrative operations (backups).
    pub admin: Option<Arc<dyn actions::AdminApi>>,
    /// Admission of store queries (cost limit, bounded pool), shared with the gRPC API.
    pub queries: Arc<thermostat_metrics::store::QueryGate>,
    /// Who may do what (shared with the gRPC API; auth off when it holds no tokens).
    pub access: Arc<Access>,
    /// Where authenticated changes are recorded, if anywhere.
    pub audit: Option<Arc<dyn AuditTrail>>,
    /// OTLP/HTTP exports (`POST /v1/metrics`), when the ingest side offers them.
    pub otlp: Option<Arc<dyn otlp::OtlpApi>>,
    /// Prometheus remote write (`POST /api/v1/write`), when the ingest side offers it.
    pub remote_write: Option<Arc<dyn remote_write::RemoteWriteApi>>,
    /// CloudWatch's API (`POST /`, `POST /service/…`), when the binary connects it.
    pub cloudwatch: Option<Arc<cloudwatch::CloudWatch>>,
    /// Cluster mode's view (`GET /api/v1/cluster`, part of `/readyz`), when clustered.
    pub cluster: Option<Arc<dyn cluster::ClusterApi>>,
}

/// The HTTP API and the web dashboard. Every error answer is JSON, and request heads over
/// [`error::MAX_URI_BYTES`] / [`error::MAX_HEADER_BYTES`] are refused ([`error::json_errors`]).
///
/// Health, the sign-in page, its endpoints and the assets are open; every other route needs
/// a principal ([`access::authenticate`]) with the route's permission ([`access::require`]).
/// The state-changing endpoints a browser can reach also refuse cross-site requests
/// ([`cross_site`]); APIs signed per request (SigV4) and form-POST query endpoints
/// (Prometheus) belong outside that group.
pub fn router(state: ApiState) -> Router {
    let needs = |p: Permission| middleware::from_fn_with_state((state.clone(), p), access::require);
    let state_changing = Router::new()
        .route(
            "/api/v1/alarms/{name}/state",
            put(alarms::set_state).route_layer(needs(Permission::SetAlarmState)),
        )
        .route(
            "/api/v1/alarms/{name}/actions/enable",
            post(alarms::enable_actions).route_layer(needs(Permission::ToggleAlarmActions)),
        )
        .route(
            "/api/v1/alarms/{name}/actions/disable",
            post(alarms::disable_actions).route_layer(needs(Permission::ToggleAlarmActions)),
        )
        .route(
            "/api/v1/groups/{name}/desired-capacity",
            put(actions::set_desired_capacity).route_layer(needs(Permission::Scale)),
        )
        .route(
            "/api/v1/groups/{name}/policies/{policy}/execute",
            post(actions::execute_policy).route_layer(needs(Permission::Scale)),
        )
        .route(
            "/api/v1/reload",
            post(alarms::reload).route_layer(needs(Permission::Reload)),
        )
        .route(
            "/api/v1/admin/backup",
            post(actions::backup).route_layer(needs(Permission::Backup)),
        )
        .route_layer(middleware::from_fn(cross_site::refuse_cross_site));
    let read = |p: Permission, h: MethodRouter<ApiState>| h.route_layer(needs(p));
    let protected = Router::new()
        .route("/metrics", read(Permission::ReadTelemetry, get(prometheus)))
        .route(
            "/api/v1/statistics",
            read(Permission::ReadMetrics, get(api::statistics)),
        )
        .route(
            "/api/v1/cluster",
            read(Permission::ReadMetrics, get(cluster::status)),
        )
        .route(
            "/api/v1/metrics",
            read(Permission::ReadMetrics, get(api::metrics)),
        )
        .route(
            "/api/v1/metric-data",
            read(Permission::ReadMetrics, post(metric_data::metric_data)).layer(
                axum::extract::DefaultBodyLimit::max(metric_data::MAX_BODY_BYTES),
            ),
        )
        .route(
            "/api/v1/export/series",
            read(Permission::ReadMetrics, get(export::series)),
        )
        .route(
            "/api/v1/query",
            read(
                Permission::ReadMetrics,
                get(promql::query).post(promql::query),
            ),
        )
        .route(
            "/api/v1/query_range",
            read(
                Permission::ReadMetrics,
                get(promql::query_range).post(promql::query_range),
            ),
        )
        .route(
            "/api/v1/series",
            read(
                Permission::ReadMetrics,
                get(promql::series).post(promql::series),
            ),
        )
        .route(
            "/api/v1/labels",
            read(
                Permission::ReadMetrics,
                get(promql::labels).post(promql::labels),
            ),
        )
        .route(
            "/api/v1/label/{name}/values",
            read(Permission::ReadMetrics, get(promql::label_values_of)),
        )
        .route(
            "/api/v1/metadata",
            read(
                Permission::ReadMetrics,
                get(promql::metadata).post(promql::metadata),
            ),
        )
        .route(
            "/api/v1/status/buildinfo",
            read(Permission::ReadMetrics, get(promql::buildinfo)),
        )
        .route(
            "/api/v1/alarms",
            read(Permission::ReadAlarms, get(alarms::list)),
        )
        .route(
            "/api/v1/alarms/{name}",
            read(Permission::ReadAlarms, get(alarms::one)),
        )
        .route(
            "/api/v1/alarms/{name}/history",
            read(Permission::ReadAlarms, get(alarms::history)),
        )
        .route(
            "/api/v1/alarms/{name}/band",
            read(Permission::ReadAlarms, get(alarms::band)),
        )
        .route(
            "/api/v1/groups",
            read(Permission::ReadGroups, get(actions::list_groups)),
        )
        .route(
            "/api/v1/groups/{name}",
            read(Permission::ReadGroups, get(actions::one_group)),
        )
        .route(
            "/api/v1/groups/{name}/activities",
            read(Permission::ReadGroups, get(actions::activities)),
        )
        .route(
            "/api/v1/notifications",
            read(Permission::ReadNotifications, get(actions::notifications)),
        )
        .route(
            "/api/v1/audit",
            read(Permission::ReadAudit, get(audit::audit)),
        )
        .route(
            "/api/v1/tokens",
            read(Permission::ManageTokens, get(audit::tokens)),
        )
        .route(
            "/api/v1/dashboard/overview",
            read(Permission::ViewDashboard, get(views::overview)),
        )
        .route(
            "/api/v1/dashboard/alarms/{name}",
            read(Permission::ReadAlarms, get(views::alarm)),
        )
        .route(
            "/api/v1/dashboard/groups/{name}",
            read(Permission::ReadGroups, get(views::group)),
        )
        .route("/", read(Permission::ViewDashboard, get(ui::page)))
        .route(
            "/v1/metrics",
            post(otlp::export)
                .route_layer(needs(Permission::PushMetrics))
                .layer(axum::extract::DefaultBodyLimit::max(
                    thermostat_otlp::limits::MAX_BODY_BYTES,
                )),
        )
        .route(
            "/api/v1/write",
            post(remote_write::write)
                .route_layer(needs(Permission::PushMetrics))
                .layer(axum::extract::DefaultBodyLimit::max(
                    thermostat_prometheus::limits::MAX_COMPRESSED_BYTES,
                )),
        )
        .route("/explore", read(Permission::ViewDashboard, get(ui::page)))
        .route("/cluster", read(Permission::ViewDashboard, get(ui::page)))
        .route(
            "/alarms/{*name}",
            read(Permission::ViewDashboard, get(ui::page)),
        )
        .route(
            "/groups/{*name}",
            read(Permission::ViewDashboard, get(ui::page)),
        )
        .merge(state_changing)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::authenticate,
        ));
    // CloudWatch's API answers its own errors in its protocols' shapes (not the JSON of
    // `error::json_errors`) and authenticates by SigV4, not by token: merged after the
    // layers, with only the request id's. `GET /` stays the dashboard.
    let cloudwatch = Router::new()
        .route("/", post(cloudwatch::serve))
        .route(
            "/service/GraniteServiceVersion20100801/operation/{op}",
            post(cloudwatch::serve),
        )
        .layer(middleware::from_fn(access::request_meta))
        .with_state(state.clone());
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/assets/{*path}", get(ui::asset))
        .merge(session::routes())
        .merge(protected)
        .fallback(not_found)
        .layer(middleware::from_fn(ui::security_headers))
        .layer(middleware::from_fn(access::request_meta))
        .layer(middleware::from_fn(error::json_errors))
        .with_state(state)
        .merge(cloudwatch)
}

async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) && state.cluster.as_ref().is_none_or(|c| c.ready()) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn prometheus(State(state): State<ApiState>) -> impl IntoResponse {
    state
        .telemetry
        .set_series_active(state.store.series_count());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.telemetry.render(),
    )
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}
