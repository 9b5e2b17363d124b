//! Reading what the settings name: secrets from environment variables or files
//! ([`read_secret`]) and CA bundles ([`read_ca_bundle`]). The notifiers call these when they
//! are built, that is at start and at every reload, so that a rotated file is picked up by
//! a reload. Values are held as [`Secret`]s, which never print; errors name the setting and
//! the variable or file, never the contents.

use std::io::Read as _;

use thermostat_alarms::notifications::{MAX_CA_FILE_BYTES, Secret, SecretSource, secret_from_file};

use crate::error::{Error, Result};

/// Reads the secret `source` names; `setting` is the setting's path without its `_env` /
/// `_file` suffix (`notifications.smtp.password`), for errors. `env` reads a variable (the
/// binary passes `|k| std::env::var(k).ok()`).
///
/// # Errors
/// [`Error::MissingSecret`] for a variable that is not set or empty; [`Error::File`] for a
/// file that cannot be read, is larger than
/// [`MAX_SECRET_FILE_BYTES`](thermostat_alarms::notifications::MAX_SECRET_FILE_BYTES), is not
/// UTF-8 or is empty (after one trailing line ending is removed).
pub fn read_secret(
    source: &SecretSource,
    setting: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret> {
    let setting = source.key(setting);
    match source {
        SecretSource::Env(var) => env(var)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| Error::MissingSecret {
                setting,
                var: var.clone(),
            }),
        SecretSource::File(path) => {
            let bytes = read_bounded(
                path,
                thermostat_alarms::notifications::MAX_SECRET_FILE_BYTES,
            )
            .map_err(|message| Error::File {
                setting: setting.clone(),
                path: path.clone(),
                message,
            })?;
            secret_from_file(&bytes).map_err(|message| Error::File {
                setting,
                path: path.clone(),
                message,
            })
        }
    }
}

/// The PEM text of the CA bundle at `path` (the `ca_file` at `setting`), checked to hold at
/// least one certificate.
///
/// # Errors
/// [`Error::File`] when the file cannot be read, is larger than [`MAX_CA_FILE_BYTES`], or
/// holds no PEM certificate.
pub fn read_ca_bundle(path: &str, setting: &str) -> Result<(Vec<u8>, Vec<reqwest::Certificate>)> {
    let err = |message: String| Error::File {
        setting: setting.to_owned(),
        path: path.to_owned(),
        message,
    };
    let pem = read_bounded(path, MAX_CA_FILE_BYTES).map_err(err)?;
    if pem.len() > MAX_CA_FILE_BYTES {
        return Err(err(format!(
            "is larger than {MAX_CA_FILE_BYTES} bytes (the limit)"
        )));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| err(format!("is not a PEM certificate bundle ({e})")))?;
    if certs.is_empty() {
        return Err(err(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    Ok((pem, certs))
}

/// At most `limit + 1` bytes of the file at `path` (one more than allowed, so that the
/// caller can tell that it is too large without reading it all).
fn read_bounded(path: &str, limit: usize) -> std::result::Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot be read ({e})");
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap).read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}
