//! End-to-end tests: the real application in-process on port 0, driven through its public
//! interfaces (gRPC, HTTP, CLI).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

mod actions;
mod alarm_actions;
mod alarms;
mod anomaly_band;
mod auth;
mod aws;
mod backtest_server;
mod browser;
mod cloudwatch_alarms;
mod cloudwatch_api;
mod cloudwatch_cli;
mod cloudwatch_sdk;
mod cluster;
mod crash;
mod dashboard_api;
mod demo;
mod docs;
mod export_alarms;
mod first_hour;
mod fleet_tls;
mod group_metrics;
mod grpc;
mod hostile;
mod http;
mod lifecycle;
mod logs;
mod manual_scaling;
mod math_alarms;
mod metric_data;
mod otlp;
mod otlp_http;
mod process;
mod prometheus_clients;
mod promql_api;
mod reflection;
mod remote_write;
mod scaling_time;
mod tls;
mod upgrade;
mod util;
mod validation;
