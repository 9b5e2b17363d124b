//! The demo's agents and observer, driven by whatever clock the caller has: [`Demo::step`]
//! pushes what the simulated fleet measured since the previous step, over real gRPC to the
//! server, and reports what the server did (alarm state changes, scaling activities and held
//! policies, notification deliveries). The real-time runner calls it every second with the
//! wall clock; tests call it on a manual clock and tick the alarm engine themselves.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;
use thermostat_alarms_runtime::AlarmRuntime;
use thermostat_dashboards::actions::{GroupApi as _, NotificationApi as _};
use thermostat_dashboards::alarms::alarm_views;
use thermostat_metrics::Timestamp;
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;
use thermostat_proto::v1::{Dimension, MetricDatum, PutMetricDataRequest};
use thermostat_scaler::Outcome;
use thermostat_scaler::group_metrics;

use super::model::{self, LoadCurve, Noise, SAMPLE_INTERVAL_MS};
use super::summary::{self, Event, Hold};
use crate::app::Running;
use crate::app::actions::Actions;

/// The scaling group the agents run in (`examples/demo.yaml`).
pub const GROUP: &str = "demo-web";
/// Namespace of the request metrics (`Latency`, `RequestCount`).
pub const APP_NAMESPACE: &str = "App/Web";
/// A status line every this many milliseconds of the curve.
const STATUS_EVERY_MS: i64 = 20_000;
/// After a longer gap (a suspended laptop), the agents skip ahead instead of back-filling.
const MAX_BACKLOG_MS: i64 = 300_000;
/// Notifications looked at per step.
const RECENT_NOTIFICATIONS: usize = 50;
/// Activities looked at per group and step.
const RECENT_ACTIVITIES: usize = 20;

type PushFuture = Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send>>;

/// Sends one `PutMetricData` request over gRPC.
struct Pusher(Box<dyn Fn(PutMetricDataRequest) -> PushFuture + Send + Sync>);

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pusher")
    }
}

impl Pusher {
    async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Pusher> {
        let client = MetricsServiceClient::connect(format!("http://{addr}"))
            .await
            .with_context(|| format!("cannot connect to the gRPC server at {addr}"))?;
        Ok(Pusher(Box::new(move |req| {
            let mut client = client.clone();
            Box::pin(async move {
                let r = client
                    .put_metric_data(req)
                    .await
                    .context("a push was refused")?;
                Ok(r.into_inner().accepted_samples)
            })
        })))
    }

    async fn push(&self, req: PutMetricDataRequest) -> anyhow::Result<u64> {
        (self.0)(req).await
    }
}

/// What the observer has already reported.
#[derive(Debug, Default)]
struct Seen {
    /// Alarm name → (state, time of its last update).
    alarms: HashMap<String, (String, String)>,
    /// Group name → the activities (as JSON text) among the newest ones.
    activities: HashMap<String, HashSet<String>>,
    /// The last scaling decision looked at.
    decision: u64,
    /// Notification id → status.
    notifications: HashMap<u64, String>,
}

/// The simulated agents of the `demo-web` fleet plus an observer of the server.
#[derive(Debug)]
pub struct Demo {
    engine: Arc<AlarmRuntime>,
    actions: Arc<Actions>,
    pusher: Pusher,
    curve: LoadCurve,
    origin: Timestamp,
    next_sample: Timestamp,
    noise: Noise,
    seen: Seen,
    samples_pushed: u64,
}

impl Demo {
    /// Connects the agents to `running`'s gRPC address; the load curve starts at `origin`.
    /// What the server already shows (states, activities, notifications) is not reported.
    ///
    /// # Errors
    /// The gRPC server cannot be reached.
    pub async fn connect(running: &Running, origin: Timestamp) -> anyhow::Result<Demo> {
        let pusher = Pusher::connect(running.grpc_addr).await?;
        let mut demo = Demo {
            engine: Arc::clone(&running.engine),
            actions: Arc::clone(&running.actions),
            pusher,
            curve: LoadCurve::DEMO,
            origin,
            next_sample: origin.floor_to(SAMPLE_INTERVAL_MS),
            noise: Noise::new(0x7E57_0DE5),
            seen: Seen::default(),
            samples_pushed: 0,
        };
        let _ = demo.observe();
        Ok(demo)
    }

    /// Samples the agents have pushed so far (as the server counted them).
    pub fn samples_pushed(&self) -> u64 {
        self.samples_pushed
    }

    /// Pushes every sample due up to `now` (one every 5 s: CPU per in-service instance,
    /// latency as a histogram, the request count), then reports what changed on the server
    /// since the previous step.
    ///
    /// # Errors
    /// A push failed: its samples are not retried (the next step goes on from `now`), and
    /// what changed on the server is reported by the next step.
    pub async fn step(&mut self, now: Timestamp) -> anyhow::Result<Vec<Event>> {
        if now.as_millis() - self.next_sample.as_millis() > MAX_BACKLOG_MS {
            self.next_sample = now.floor_to(SAMPLE_INTERVAL_MS);
        }
        let mut events = Vec::new();
        let mut cpu = Vec::new();
        let mut app = Vec::new();
        while self.next_sample <= now {
            let at = self.next_sample;
            self.next_sample = at.add_millis(SAMPLE_INTERVAL_MS);
            if let Some(status) = self.sample(at, &mut cpu, &mut app) {
                events.push(status);
            }
        }
        let pushed = async {
            let mut n = 0;
            if !cpu.is_empty() {
                n += self.pusher.push(request("AWS/EC2", cpu)).await?;
            }
            if !app.is_empty() {
                n += self.pusher.push(request(APP_NAMESPACE, app)).await?;
            }
            anyhow::Ok(n)
        }
        .await;
        // On a failed push nothing is observed, so that the changes are reported next time.
        self.samples_pushed += pushed?;
        events.extend(self.observe());
        summary::order_by_cause(&mut events);
        Ok(events)
    }

    /// The fleet's measurements at `at`, added to the two requests; a status event every
    /// 20 s of the curve.
    fn sample(
        &mut self,
        at: Timestamp,
        cpu: &mut Vec<MetricDatum>,
        app: &mut Vec<MetricDatum>,
    ) -> Option<Event> {
        let elapsed = at.as_millis() - self.origin.as_millis();
        let capacity = self.actions.group_capacity(GROUP, at)?;
        let load = self
            .noise
            .jitter(
                self.curve.requests_per_second(elapsed),
                0.03 * self.curve.base_rps,
            )
            .max(0.0);
        let u = model::utilisation(load, capacity.in_service);
        let group = [(group_metrics::GROUP_DIMENSION, GROUP)];
        let mut cpu_sum = 0.0;
        for _ in 0..capacity.in_service {
            let v = self
                .noise
                .jitter(model::cpu_percent(u), 3.0)
                .clamp(0.0, 100.0);
            cpu_sum += v;
            cpu.push(datum("CPUUtilization", &group, at, "Percent", Some(v)));
        }
        let requests = (load * SAMPLE_INTERVAL_MS as f64 / 1000.0).round() as u64;
        let mean = self
            .noise
            .jitter(model::mean_latency_ms(u), 0.02 * model::mean_latency_ms(u));
        if capacity.in_service > 0 && requests > 0 {
            let (values, counts) = model::latency_histogram(mean, requests);
            let mut d = datum("Latency", &group, at, "Milliseconds", None);
            d.values = values;
            d.counts = counts;
            app.push(d);
        }
        app.push(datum(
            "RequestCount",
            &group,
            at,
            "Count",
            Some(requests as f64),
        ));
        (elapsed.rem_euclid(STATUS_EVERY_MS) < SAMPLE_INTERVAL_MS).then(|| Event::Status {
            at,
            load_rps: load,
            in_service: capacity.in_service,
            desired: capacity.desired,
            cpu_percent: if capacity.in_service == 0 {
                0.0
            } else {
                cpu_sum / f64::from(capacity.in_service)
            },
            p50_ms: model::latency_quantile_ms(mean, 0.5),
            p99_ms: model::latency_quantile_ms(mean, 0.99),
        })
    }

    /// What changed on the server since the last look.
    ///
    /// Effects are read before their causes: a tick (or a state set by hand) changes the
    /// alarms and hands their actions on (scaling decisions and activities, queued
    /// notifications) under the engine's lock, so an effect read here has its alarm's change
    /// visible when the alarms are read after it, and is reported in the same step as its
    /// cause, never in a step before it.
    fn observe(&mut self) -> Vec<Event> {
        let decisions = self.actions.decisions_after(self.seen.decision);
        let activities: Vec<(String, Vec<Value>)> = self
            .actions
            .list()
            .iter()
            .filter_map(|g| g["name"].as_str())
            .map(|name| {
                let items = self
                    .actions
                    .activities(name, RECENT_ACTIVITIES)
                    .unwrap_or_default();
                (name.to_owned(), items)
            })
            .collect();
        let mut recent = self.actions.recent(RECENT_NOTIFICATIONS);
        let alarms = alarm_views(&self.engine.list());

        let mut events = Vec::new();
        for view in alarms {
            let current = (view.state.clone(), view.state_updated.clone());
            if let Some((before, _)) = self.seen.alarms.insert(view.name.clone(), current)
                && before != view.state
            {
                events.push(Event::AlarmChanged {
                    at: parse_time(&view.state_updated),
                    alarm: view.name,
                    from: before,
                    to: view.state,
                    reason: view.reason,
                });
            }
        }
        for (seq, decision) in decisions {
            self.seen.decision = seq;
            for e in &decision.evaluations {
                let (hold, until) = match e.outcome {
                    Outcome::InCooldown { until } => (Hold::Cooldown, until),
                    Outcome::WarmingUp { until } => (Hold::WarmUp, until),
                    _ => continue,
                };
                events.push(Event::PolicyHeld {
                    at: decision.timestamp,
                    group: decision.group.clone(),
                    policy: e.policy.clone(),
                    alarm: e.alarm.clone(),
                    hold,
                    until,
                });
            }
        }
        for (name, items) in &activities {
            let name = name.as_str();
            let keys: HashSet<String> = items.iter().map(Value::to_string).collect();
            let first_look = !self.seen.activities.contains_key(name);
            let known = self.seen.activities.entry(name.to_owned()).or_default();
            // Newest first: report oldest first.
            for item in items.iter().rev() {
                if first_look || known.contains(&item.to_string()) {
                    continue;
                }
                events.push(Event::Activity {
                    at: Timestamp(item["timestamp"].as_i64().unwrap_or_default()),
                    group: name.to_owned(),
                    old_desired: number(&item["old_desired"]),
                    new_desired: number(&item["new_desired"]),
                    policy: item["policy"].as_str().map(str::to_owned),
                    alarm: item["alarm"].as_str().map(str::to_owned),
                    status: item["status"].as_str().unwrap_or_default().to_owned(),
                });
            }
            *known = keys;
        }
        recent.reverse();
        for n in recent {
            let (Some(id), Some(status)) = (n["id"].as_u64(), n["status"].as_str()) else {
                continue;
            };
            let before = self.seen.notifications.insert(id, status.to_owned());
            if status != "pending" && before.as_deref() != Some(status) {
                // When the last attempt was made, else when the alarm changed state.
                let at = n["attempts"]
                    .as_array()
                    .and_then(|a| a.last())
                    .and_then(|a| a["at"].as_str())
                    .or_else(|| n["transition_time"].as_str())
                    .unwrap_or_default();
                events.push(Event::Notification {
                    at: parse_time(at),
                    alarm: n["alarm_name"].as_str().unwrap_or_default().to_owned(),
                    action: n["action"].as_str().unwrap_or_default().to_owned(),
                    new_state: n["new_state"].as_str().unwrap_or_default().to_owned(),
                    status: status.to_owned(),
                });
            }
        }
        if self.seen.notifications.len() > 4 * RECENT_NOTIFICATIONS {
            let mut ids: Vec<u64> = self.seen.notifications.keys().copied().collect();
            ids.sort_unstable();
            for id in &ids[..ids.len() - 2 * RECENT_NOTIFICATIONS] {
                self.seen.notifications.remove(id);
            }
        }
        events
    }
}

fn number(v: &Value) -> u32 {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Timestamp {
    thermostat_alarms::timefmt::parse_time(s, 1000).unwrap_or_default()
}

fn request(namespace: &str, metric_data: Vec<MetricDatum>) -> PutMetricDataRequest {
    PutMetricDataRequest {
        namespace: namespace.to_owned(),
        metric_data,
    }
}

/// A high-resolution datum (10-second alarms need 1-second storage).
fn datum(
    name: &str,
    dimensions: &[(&str, &str)],
    at: Timestamp,
    unit: &str,
    value: Option<f64>,
) -> MetricDatum {
    MetricDatum {
        metric_name: name.to_owned(),
        dimensions: dimensions
            .iter()
            .map(|(n, v)| Dimension {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        timestamp_ms: at.as_millis(),
        value,
        unit: unit.to_owned(),
        storage_resolution: 1,
        ..MetricDatum::default()
    }
}
