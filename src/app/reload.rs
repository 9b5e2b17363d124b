//! Reloading the alarm runtime's configuration: read the files, validate them, swap the
//! running set (`thermostat_alarms_runtime::AlarmRuntime::swap`), then reconfigure the
//! actions.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thermostat_alarms_runtime::AlarmRuntime;
use thermostat_dashboards::alarms::{AlarmApiError, FileDigest, ReloadApi, ReloadReport};

use super::actions::Actions;
use crate::config::{self, Config};
use crate::security::Security;

/// Reloads the configuration into a running [`AlarmRuntime`] and the [`Actions`].
#[derive(Debug)]
pub struct Reloader {
    paths: Vec<PathBuf>,
    runtime: Arc<AlarmRuntime>,
    actions: Arc<Actions>,
    /// The running configuration; held by a reload from start to end, so that reloads run
    /// one at a time (ticks and the API never take it).
    running: Mutex<Arc<Config>>,
    /// Accept a reload that yields no alarms (`allow_empty_config`).
    allow_empty_config: bool,
    /// Tokens and TLS certificates, re-read with the configuration.
    security: Arc<Security>,
    /// What the running configuration's secret files and CA bundles held when it was loaded.
    required_files: Mutex<Vec<(String, Option<u64>)>>,
    /// Told each configuration swapped in (cluster mode announces its digest).
    on_swap: Mutex<Option<SwapHook>>,
}

/// What [`Reloader::on_swap`] calls.
struct SwapHook(Box<dyn Fn(&Config) + Send + Sync>);

impl std::fmt::Debug for SwapHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SwapHook")
    }
}

impl Reloader {
    /// Reloads of `paths` into `runtime` and `actions`, which run `config`; a reload that
    /// yields no alarms is refused unless `allow_empty_config` ([`config::refuse_empty`]).
    pub fn new(
        paths: Vec<PathBuf>,
        config: Config,
        runtime: Arc<AlarmRuntime>,
        actions: Arc<Actions>,
        allow_empty_config: bool,
        security: Arc<Security>,
    ) -> Self {
        Reloader {
            paths,
            runtime,
            actions,
            required_files: Mutex::new(config::required_files(&config.requirements)),
            running: Mutex::new(Arc::new(config)),
            allow_empty_config,
            security,
            on_swap: Mutex::new(None),
        }
    }

    /// Calls `hook` with every configuration a reload swaps in.
    pub fn on_swap(&self, hook: impl Fn(&Config) + Send + Sync + 'static) {
        *self.on_swap.lock().unwrap_or_else(|p| p.into_inner()) = Some(SwapHook(Box::new(hook)));
    }

    /// Re-reads the configuration; on success swaps it in atomically, carrying states over.
    ///
    /// Reading and validating happen without the runtime's lock; a reload whose files all
    /// hash the same as the running configuration's does nothing.
    ///
    /// # Errors
    /// Every configuration error, or a configuration that would delete every alarm; the
    /// running configuration stays.
    pub fn reload_from_disk(&self) -> Result<ReloadReport, config::LoadError> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        // The settings file's tokens and the TLS certificates first: a reload that rotates a
        // leaked token must not wait on (or be lost with) a configuration error.
        self.security
            .reload()
            .map_err(|e| config::LoadError::Settings(e.to_string()))?;
        tracing::info!(paths = ?self.paths, "Reading the configuration to reload it.");
        let (texts, fingerprint) = config::read(&self.paths)?;
        let files: Vec<FileDigest> = texts
            .iter()
            .map(|(path, text)| FileDigest {
                path: path.clone(),
                sha256: thermostat_auth::digest_hex(text),
            })
            .collect();
        // A secret file or CA bundle that changed on disk makes it a real reload too.
        let required_files = config::required_files(&running.requirements);
        let mut loaded_files = self
            .required_files
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if fingerprint == running.source
            && !self.paths.is_empty()
            && required_files == *loaded_files
        {
            let report = ReloadReport {
                alarms: running.alarms.alarms.len(),
                composite_alarms: running.alarms.composites.len(),
                changed: Vec::new(),
                removed: Vec::new(),
                files,
            };
            tracing::info!(
                alarms = report.alarms,
                composite_alarms = report.composite_alarms,
                changed = 0,
                removed = 0,
                "Reloaded the configuration: no file changed."
            );
            return Ok(report);
        }
        let mut config = config::validate(&texts)?;
        config.source = fingerprint;
        config::refuse_empty(
            &config,
            Some(&running),
            &self.paths,
            self.allow_empty_config,
        )?;
        *loaded_files = config::required_files(&config.requirements);
        let config = Arc::new(config);
        let alarms = Arc::new(config.alarms.clone());
        // Every node of a cluster reloads the same files: what the swap writes stays local.
        let swapped = crate::app::cluster_state::local_writes(|| {
            self.runtime
                .swap(alarms, |_| self.actions.on_reload(&config))
        });
        if let Some(hook) = &*self.on_swap.lock().unwrap_or_else(|p| p.into_inner()) {
            (hook.0)(&config);
        }
        *running = config;
        Ok(ReloadReport {
            alarms: swapped.alarms,
            composite_alarms: swapped.composite_alarms,
            changed: swapped.changed,
            removed: swapped.removed,
            files,
        })
    }
}

impl ReloadApi for Reloader {
    fn reload(&self) -> Result<ReloadReport, AlarmApiError> {
        self.reload_from_disk().map_err(|e| {
            tracing::warn!(errors = %e, "Rejected a configuration reload; the running configuration stays.");
            AlarmApiError::Config(e.lines())
        })
    }
}
