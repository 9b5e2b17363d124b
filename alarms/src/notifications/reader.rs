//! Reading the `notifications:` sections of the configuration files with positions
//! ([`validate_notifications`], [`NotificationsReader`]): every file's section merged, every
//! problem reported, and the cross-checks with the alarms' actions; and what the sections
//! need from the machine ([`requirements`]).

use std::collections::HashMap;
use std::time::Duration;

use thermostat_yaml::document::MarkedMappingNode;
use thermostat_yaml::{Document, EmptyList, ErrorList, FieldChecker, FieldMap, Node};

use super::secret::check_path;
use super::{
    MAX_MUTE_DURATION_SECONDS, MAX_MUTE_RULE_ALARMS, MuteRule, NAMED_WEBHOOK_PREFIX,
    NotificationSettings, RetrySettings, SecretSource, SmtpSettings, StartTls, WebhookFormat,
    WebhookSettings, resolve_path, time_zone,
};
use crate::error::{ConfigError, ConfigErrors, Pos, Rule};
use crate::message;
use crate::model::AlarmSet;
use crate::raw::{FileActions, pos_of};
use crate::timefmt;

/// Checks an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn check_env_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be an environment variable name such as SMTP_PASSWORD (got {s:?})"
        ))
    }
}

fn check_name(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to 64 letters, digits, '-', '_' or '.' (got {s:?})"
        ))
    }
}

fn check_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.split(['/', '?', '#']).next().unwrap_or("").is_empty()
                && !s.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "must be an http:// or https:// URL with a host (got {s:?})"
        )),
    }
}

/// A secret given as `<base>_env` (an environment variable) or `<base>_file` (a file; a
/// relative path is resolved against the folder of the file being read) in the map `f` at
/// `p`: its source when right, and the position of the key's value when either is given
/// (also when it is wrong). Both at once is an error at the later one, naming both.
fn secret_source(
    check: &mut FieldChecker<'_>,
    f: &FieldMap<'_>,
    p: &str,
    base: &str,
) -> (Option<SecretSource>, Option<Pos>) {
    let env_key = format!("{base}_env");
    let file_key = format!("{base}_file");
    let env = check.value(f, &env_key, p);
    let file = check.value(f, &file_key, p);
    match (env, file) {
        (Some((_, env_pos)), Some((_, file_pos))) => {
            let (pos, key) = if file_pos > env_pos {
                (file_pos, &file_key)
            } else {
                (env_pos, &env_key)
            };
            check.push(
                pos,
                format!("{p}.{key}"),
                Rule::Consistency,
                format!(
                    "{env_key} and {file_key} are both given; give one of them (the secret comes from an environment variable or from a file)"
                ),
            );
            (None, Some(pos))
        }
        (Some(v), None) => {
            let pos = v.1;
            let s = check.checked(Some(v), &format!("{p}.{env_key}"), Rule::Name, |s| {
                check_env_name(s).map(|()| SecretSource::Env(s.to_owned()))
            });
            (s, Some(pos))
        }
        (None, Some(v)) => {
            let pos = v.1;
            let file = check.file().to_owned();
            let s = check.checked(Some(v), &format!("{p}.{file_key}"), Rule::Syntax, |s| {
                check_path(s).map(|()| SecretSource::File(resolve_path(&file, s)))
            });
            (s, Some(pos))
        }
        (None, None) => (None, None),
    }
}

/// `ca_file` of the map `f` at `p` (resolved against the folder of the file being read),
/// and the position of its value.
fn ca_file(
    check: &mut FieldChecker<'_>,
    f: &FieldMap<'_>,
    p: &str,
) -> (Option<String>, Option<Pos>) {
    let v = check.value(f, "ca_file", p);
    let pos = v.as_ref().map(|(_, pos)| *pos);
    let file = check.file().to_owned();
    let path = check.checked(v, &format!("{p}.ca_file"), Rule::Syntax, |s| {
        check_path(s).map(|()| resolve_path(&file, s))
    });
    (path, pos)
}

/// What one section's settings were set from, to report a second definition.
#[derive(Debug, Default)]
struct Seen {
    singles: HashMap<&'static str, (String, Pos)>,
    webhooks: HashMap<String, (String, Pos)>,
    mute_rules: HashMap<String, (String, Pos)>,
}

const SECTION_KEYS: &[&str] = &[
    "account_id",
    "region",
    "dashboard_url",
    "smtp",
    "webhooks",
    "mute_rules",
    "retry",
    "queue_capacity",
];
const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "from",
    "starttls",
    "username",
    "password_env",
    "password_file",
    "ca_file",
    "timeout_seconds",
];
const WEBHOOK_KEYS: &[&str] = &[
    "name",
    "url",
    "format",
    "secret_env",
    "secret_file",
    "routing_key_env",
    "routing_key_file",
    "ca_file",
    "timeout_seconds",
];
const MUTE_KEYS: &[&str] = &[
    "name",
    "alarms",
    "schedule",
    "duration_seconds",
    "time_zone",
    "starts_at",
    "ends_at",
];
const RETRY_KEYS: &[&str] = &[
    "initial_backoff_seconds",
    "max_backoff_seconds",
    "give_up_after_seconds",
];

/// Parses and validates the `notifications:` sections of a set of configuration files,
/// given as `(file name, text)` pairs (the same files given to [`crate::validate()`], whose
/// result is `alarms`), merging them: `webhooks` and `mute_rules` are concatenated (names
/// unique across files), every other setting may be given in one file only.
///
/// Cross-checks: every `webhook:<name>` action names a webhook of `webhooks`, `mailto:`
/// actions need `smtp`, and a mute-rule pattern without wildcards names an existing alarm
/// (skipped when `alarms` is empty, as when the alarms themselves are invalid).
///
/// # Errors
/// Every problem found, as `file:line:column: path: message`, sorted by file and position.
pub fn validate_notifications<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
    alarms: &AlarmSet,
) -> Result<NotificationSettings, ConfigErrors> {
    let mut errors = ErrorList::new();
    let mut reader = NotificationsReader::default();
    for (file, text) in files {
        reader.read(&Document::parse(file.as_ref(), text.as_ref()), &mut errors);
    }
    let out = reader.finish(&crate::raw::read_file_actions(files), alarms, &mut errors);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_ref()).collect();
    errors.finish(out, &names)
}

/// Reads the `notifications:` sections of a configuration's parsed files one at a time,
/// merging them ([`NotificationsReader::read`]), then cross-checks them with the alarms
/// ([`NotificationsReader::finish`]), as [`validate_notifications`] does.
#[derive(Debug, Default)]
pub struct NotificationsReader {
    settings: NotificationSettings,
    seen: Seen,
}

impl NotificationsReader {
    /// Reads the `notifications:` section of one parsed file, pushing every problem to
    /// `errors` (a setting given in an earlier file too included). A file that could not be
    /// parsed is skipped: the alarms' reader (`crate::raw::read`) reports it.
    pub fn read(&mut self, doc: &Document, errors: &mut ErrorList) {
        if let Some(section) = doc.section("notifications") {
            let mut check = FieldChecker::new(doc.file(), errors);
            section_into(&mut check, section, &mut self.settings, &mut self.seen);
        }
    }

    /// Cross-checks the settings read with the actions written in the same files
    /// (`crate::raw::file_actions`, in file order) and with `alarms`, the alarms validated
    /// from them (empty when they are invalid), pushing every problem to `errors`; the
    /// settings are the configuration's only when no error was found.
    pub fn finish(
        self,
        actions: &[FileActions],
        alarms: &AlarmSet,
        errors: &mut ErrorList,
    ) -> NotificationSettings {
        let NotificationsReader {
            settings: out,
            seen,
        } = self;
        // Cross-checks against the actions, with their positions.
        for file in actions {
            check_actions(&mut FieldChecker::new(&file.file, errors), file, &out);
        }
        for (file, rule_pos, rule) in seen.mute_rules.iter().filter_map(|(name, (file, pos))| {
            out.mute_rules
                .iter()
                .find(|r| &r.name == name)
                .map(|r| (file, *pos, r))
        }) {
            for (i, p) in rule.alarms.iter().enumerate() {
                // With no alarms at all (the caller passes an empty set when the alarms are
                // invalid) this check would only add noise.
                let no_alarms = alarms.alarms.is_empty() && alarms.composites.is_empty();
                let exact = !(no_alarms || p.contains(['*', '?']));
                if exact && alarms.alarm(p).is_none() && alarms.composite(p).is_none() {
                    errors.push(ConfigError {
                        file: file.clone(),
                        pos: rule_pos,
                        path: format!("notifications.mute_rules.{}.alarms[{i}]", rule.name),
                        rule: Rule::Consistency,
                        message: format!(
                            "names no alarm (got {p:?}); use an alarm name or a pattern with * or ?"
                        ),
                    });
                }
            }
        }
        out
    }
}

fn once(
    check: &mut FieldChecker<'_>,
    seen: &mut Seen,
    key: &'static str,
    pos: Pos,
    path: &str,
) -> bool {
    if let Some((file, first)) = seen.singles.get(key) {
        check.push(
            pos,
            path,
            Rule::Duplicate,
            format!(
                "is already set at {file}:{}:{}; give each setting in one file only",
                first.line, first.column
            ),
        );
        return false;
    }
    seen.singles.insert(key, (check.file().to_owned(), pos));
    true
}

fn section_into(
    check: &mut FieldChecker<'_>,
    node: &Node,
    out: &mut NotificationSettings,
    seen: &mut Seen,
) {
    const P: &str = "notifications";
    if matches!(node, Node::Scalar(s) if matches!(s.as_str(), "" | "~" | "null")) {
        return;
    }
    let Some(f) = check.map(node, P, SECTION_KEYS) else {
        return;
    };
    for key in ["account_id", "region", "dashboard_url", "queue_capacity"] {
        let Some((_, kpos)) = f.get(key) else {
            continue;
        };
        if !once(check, seen, key, kpos, &format!("{P}.{key}")) {
            continue;
        }
        let v = check.value(&f, key, P);
        let path = format!("{P}.{key}");
        match key {
            "account_id" => {
                out.account_id = check.checked(v, &path, Rule::Name, |s| {
                    message::check_account_id(s).map(|()| s.to_owned())
                });
            }
            "region" => {
                out.region = check.checked(v, &path, Rule::Name, |s| {
                    message::check_region(s).map(|()| s.to_owned())
                });
            }
            "dashboard_url" => {
                out.dashboard_url = check.checked(v, &path, Rule::Syntax, |s| {
                    check_url(s).map(|()| s.trim_end_matches('/').to_owned())
                });
            }
            _ => {
                if let Some(n) =
                    check.checked(v, &path, Rule::Number, |s| match s.parse::<usize>() {
                        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
                        _ => Err(format!("must be between 1 and 1000000 (got {s})")),
                    })
                {
                    out.queue_capacity = n;
                }
            }
        }
    }
    if let Some((node, kpos)) = f.get("smtp")
        && once(check, seen, "smtp", kpos, &format!("{P}.smtp"))
    {
        out.smtp = smtp(check, node, kpos);
    }
    if let Some((node, kpos)) = f.get("retry")
        && once(check, seen, "retry", kpos, &format!("{P}.retry"))
        && let Some(r) = retry(check, node)
    {
        out.retry = r;
    }
    if let Some((node, _)) = f.get("webhooks") {
        for (i, item) in check
            .list(node, &format!("{P}.webhooks"), EmptyList::BlankTildeOrNull)
            .iter()
            .enumerate()
        {
            let pos = pos_of(item.span());
            if let Some(w) = webhook(check, item, i) {
                let path = format!("{P}.webhooks.{}", w.name);
                if let Some((file, first)) = seen.webhooks.get(&w.name) {
                    check.push(
                        pos,
                        &path,
                        Rule::Duplicate,
                        format!(
                            "webhook names must be unique; {:?} is already defined at {file}:{}:{}",
                            w.name, first.line, first.column
                        ),
                    );
                } else {
                    seen.webhooks
                        .insert(w.name.clone(), (check.file().to_owned(), pos));
                    out.webhooks.push(w);
                }
            }
        }
    }
    if let Some((node, _)) = f.get("mute_rules") {
        for (i, item) in check
            .list(
                node,
                &format!("{P}.mute_rules"),
                EmptyList::BlankTildeOrNull,
            )
            .iter()
            .enumerate()
        {
            let pos = pos_of(item.span());
            if let Some(r) = mute_rule(check, item, i) {
                let path = format!("{P}.mute_rules.{}", r.name);
                if let Some((file, first)) = seen.mute_rules.get(&r.name) {
                    check.push(
                        pos,
                        &path,
                        Rule::Duplicate,
                        format!(
                            "mute rule names must be unique; {:?} is already defined at {file}:{}:{}",
                            r.name, first.line, first.column
                        ),
                    );
                } else {
                    seen.mute_rules
                        .insert(r.name.clone(), (check.file().to_owned(), pos));
                    out.mute_rules.push(r);
                }
            }
        }
    }
}

fn smtp(check: &mut FieldChecker<'_>, node: &Node, entry: Pos) -> Option<SmtpSettings> {
    const P: &str = "notifications.smtp";
    let entry = if node.as_mapping().is_some() {
        pos_of(node.span())
    } else {
        entry
    };
    let f = check.map(node, P, SMTP_KEYS)?;
    let host = check.required_value(&f, "host", P, entry);
    let host = check.checked(host, &format!("{P}.host"), Rule::Syntax, |s| {
        if s.chars().any(|c| c.is_whitespace() || c == '/') {
            Err(format!("must be a host name or address (got {s:?})"))
        } else {
            Ok(s.to_owned())
        }
    });
    let port = check.value(&f, "port", P);
    let port = match port {
        None => Some(25),
        v => check.checked(v, &format!("{P}.port"), Rule::Number, |s| {
            match s.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(format!("must be a port between 1 and 65535 (got {s})")),
            }
        }),
    };
    let from = check.required_value(&f, "from", P, entry);
    let from = check.checked(from, &format!("{P}.from"), Rule::Syntax, |s| {
        match s.rsplit_once('@') {
            Some((l, d)) if !l.is_empty() && !d.is_empty() && !s.contains(char::is_whitespace) => {
                Ok(s.to_owned())
            }
            _ => Err(format!(
                "must be an e-mail address such as thermostat@example.com (got {s:?})"
            )),
        }
    });
    let starttls = match check.value(&f, "starttls", P) {
        None => Some(StartTls::default()),
        v => check.checked(v, &format!("{P}.starttls"), Rule::Enum, str::parse),
    };
    let username = check.value(&f, "username", P);
    let (password, password_pos) = secret_source(check, &f, P, "password");
    match (&username, password_pos) {
        (Some((_, p)), None) => check.push(
            *p,
            format!("{P}.password_env"),
            Rule::Required,
            "is required with username: password_env (an environment variable) or password_file (a file) holding the password",
        ),
        (None, Some(p)) => check.push(
            p,
            format!("{P}.username"),
            Rule::Required,
            "is required with a password (password_env or password_file)",
        ),
        _ => {}
    }
    let (ca_file, ca_pos) = ca_file(check, &f, P);
    if let (Some(StartTls::None), Some(pos)) = (starttls, ca_pos) {
        check.push(
            pos,
            format!("{P}.ca_file"),
            Rule::Consistency,
            "is only used with starttls: opportunistic or required (the connection is not encrypted with starttls: none)",
        );
    }
    let timeout = match f.get("timeout_seconds") {
        None => Some(Duration::from_secs(10)),
        Some(_) => check.seconds(&f, "timeout_seconds", P, 0.001, 3600.0),
    };
    Some(SmtpSettings {
        host: host?,
        port: port?,
        from: from?,
        starttls: starttls?,
        username: username.map(|(u, _)| u),
        password,
        ca_file,
        timeout: timeout?,
    })
}

fn retry(check: &mut FieldChecker<'_>, node: &Node) -> Option<RetrySettings> {
    const P: &str = "notifications.retry";
    let f = check.map(node, P, RETRY_KEYS)?;
    let d = RetrySettings::default();
    let initial = match f.get("initial_backoff_seconds") {
        None => Some(d.initial_backoff),
        Some(_) => check.seconds(&f, "initial_backoff_seconds", P, 0.001, 86_400.0),
    };
    let max = match f.get("max_backoff_seconds") {
        None => Some(d.max_backoff),
        Some(_) => check.seconds(&f, "max_backoff_seconds", P, 0.001, 86_400.0),
    };
    let give_up = match f.get("give_up_after_seconds") {
        None => Some(d.give_up_after),
        Some(_) => check
            .seconds(&f, "give_up_after_seconds", P, 0.0, 366.0 * 86_400.0)
            .map(|g| (!g.is_zero()).then_some(g)),
    };
    let (initial, max, give_up) = (initial?, max?, give_up?);
    if max < initial {
        let pos = f
            .get("max_backoff_seconds")
            .map_or(Pos::default(), |(_, p)| p);
        check.push(
            pos,
            format!("{P}.max_backoff_seconds"),
            Rule::Consistency,
            format!(
                "must be at least initial_backoff_seconds ({} s) (got {} s)",
                initial.as_secs_f64(),
                max.as_secs_f64()
            ),
        );
        return None;
    }
    Some(RetrySettings {
        initial_backoff: initial,
        max_backoff: max,
        give_up_after: give_up,
    })
}

fn webhook(check: &mut FieldChecker<'_>, node: &Node, i: usize) -> Option<WebhookSettings> {
    let entry = pos_of(node.span());
    let f = check.map(node, &format!("notifications.webhooks[{i}]"), WEBHOOK_KEYS)?;
    let name = check.required_value(&f, "name", &format!("notifications.webhooks[{i}]"), entry);
    let name = check.checked(
        name,
        &format!("notifications.webhooks[{i}].name"),
        Rule::Name,
        |s| check_name(s).map(|()| s.to_owned()),
    );
    let p = name.as_ref().map_or_else(
        || format!("notifications.webhooks[{i}]"),
        |n| format!("notifications.webhooks.{n}"),
    );
    let url = check.required_value(&f, "url", &p, entry);
    let url = check.checked(url, &format!("{p}.url"), Rule::Syntax, |s| {
        check_url(s).map(|()| s.to_owned())
    });
    let format = match check.value(&f, "format", &p) {
        None => Some(WebhookFormat::default()),
        v => check.checked(v, &format!("{p}.format"), Rule::Enum, str::parse),
    };
    let (secret, _) = secret_source(check, &f, &p, "secret");
    let (routing_key, routing_key_pos) = secret_source(check, &f, &p, "routing_key");
    match format {
        Some(WebhookFormat::Pagerduty) if routing_key_pos.is_none() => check.push(
            entry,
            format!("{p}.routing_key_env"),
            Rule::Required,
            "is required with format: pagerduty: routing_key_env (an environment variable) or routing_key_file (a file) holding the integration key",
        ),
        Some(fmt) if fmt != WebhookFormat::Pagerduty => {
            for key in ["routing_key_env", "routing_key_file"] {
                if let Some((_, kpos)) = f.get(key) {
                    check.push(
                        kpos,
                        format!("{p}.{key}"),
                        Rule::Consistency,
                        format!(
                            "is only used with format: pagerduty (the format is {})",
                            fmt.as_str()
                        ),
                    );
                }
            }
        }
        _ => {}
    }
    let (ca_file, ca_pos) = ca_file(check, &f, &p);
    if let (Some(u), Some(pos)) = (&url, ca_pos)
        && !u.starts_with("https://")
    {
        check.push(
            pos,
            format!("{p}.ca_file"),
            Rule::Consistency,
            "is only used with an https:// URL (the url is http://)",
        );
    }
    let timeout = match f.get("timeout_seconds") {
        None => Some(Duration::from_secs(10)),
        Some(_) => check.seconds(&f, "timeout_seconds", &p, 0.001, 3600.0),
    };
    Some(WebhookSettings {
        name: name?,
        url: url?,
        format: format?,
        secret,
        routing_key,
        ca_file,
        timeout: timeout?,
    })
}

fn mute_rule(check: &mut FieldChecker<'_>, node: &Node, i: usize) -> Option<MuteRule> {
    let entry = pos_of(node.span());
    let f = check.map(node, &format!("notifications.mute_rules[{i}]"), MUTE_KEYS)?;
    let name = check.required_value(&f, "name", &format!("notifications.mute_rules[{i}]"), entry);
    let name = check.checked(
        name,
        &format!("notifications.mute_rules[{i}].name"),
        Rule::Name,
        |s| check_name(s).map(|()| s.to_owned()),
    );
    let p = name.as_ref().map_or_else(
        || format!("notifications.mute_rules[{i}]"),
        |n| format!("notifications.mute_rules.{n}"),
    );
    let mut alarms = Vec::new();
    let mut alarms_ok = true;
    match f.get("alarms") {
        None => {
            check.push(entry, format!("{p}.alarms"), Rule::Required, "is required");
            alarms_ok = false;
        }
        Some((node, kpos)) => {
            let items = check.list(node, &format!("{p}.alarms"), EmptyList::BlankTildeOrNull);
            if items.is_empty() || items.len() > MAX_MUTE_RULE_ALARMS {
                check.push(
                    kpos,
                    format!("{p}.alarms"),
                    Rule::Consistency,
                    format!(
                        "must list 1 to {MAX_MUTE_RULE_ALARMS} alarm names or patterns (got {})",
                        items.len()
                    ),
                );
                alarms_ok = false;
            }
            for (j, item) in items.iter().enumerate() {
                let path = format!("{p}.alarms[{j}]");
                match check.scalar(item, &path) {
                    Some((s, _)) if !s.is_empty() => alarms.push(s.to_owned()),
                    Some((_, pos)) => {
                        check.push(pos, &path, Rule::Name, "must not be empty");
                        alarms_ok = false;
                    }
                    None => alarms_ok = false,
                }
            }
        }
    }
    let schedule_text = check.value(&f, "schedule", &p);
    let has_schedule = schedule_text.is_some();
    let schedule = check.checked(
        schedule_text,
        &format!("{p}.schedule"),
        Rule::Syntax,
        str::parse,
    );
    let time_zone = match check.value(&f, "time_zone", &p) {
        None => Some("UTC".to_owned()),
        v => check.checked(v, &format!("{p}.time_zone"), Rule::Enum, |s| {
            time_zone(s).map(|_| s.to_owned())
        }),
    };
    let time = |check: &mut FieldChecker<'_>, key: &str| {
        let v = check.value(&f, key, &p);
        let pos = v.as_ref().map(|(_, p)| *p);
        let t = check.checked(v, &format!("{p}.{key}"), Rule::Syntax, |s| {
            timefmt::parse_rfc3339(s).ok_or_else(|| {
                format!("must be an RFC 3339 time such as 2024-06-01T02:00:00Z (got {s:?})")
            })
        });
        (t, pos)
    };
    let (starts_at, _) = time(check, "starts_at");
    let (ends_at, ends_pos) = time(check, "ends_at");
    if let (Some(s), Some(e), Some(pos)) = (starts_at, ends_at, ends_pos)
        && e <= s
    {
        check.push(
            pos,
            format!("{p}.ends_at"),
            Rule::Consistency,
            "must be after starts_at",
        );
    }
    let duration = if has_schedule {
        if f.contains("duration_seconds") {
            check.seconds(
                &f,
                "duration_seconds",
                &p,
                1.0,
                MAX_MUTE_DURATION_SECONDS as f64,
            )
        } else {
            check.push(
                entry,
                format!("{p}.duration_seconds"),
                Rule::Required,
                "is required with schedule (how long each window stays open)",
            );
            None
        }
    } else {
        if let Some((_, kpos)) = f.get("duration_seconds") {
            check.push(
                kpos,
                format!("{p}.duration_seconds"),
                Rule::Consistency,
                "is only used with schedule; a one-time window runs from starts_at to ends_at",
            );
        }
        if !(f.contains("starts_at") && f.contains("ends_at")) {
            check.push(
                entry,
                format!("{p}.schedule"),
                Rule::Required,
                "is required unless starts_at and ends_at give a one-time window",
            );
        }
        Some(Duration::ZERO)
    };
    if !alarms_ok {
        return None;
    }
    Some(MuteRule {
        name: name?,
        alarms,
        schedule: if has_schedule { Some(schedule?) } else { None },
        duration: duration?,
        time_zone: time_zone?,
        starts_at,
        ends_at,
    })
}

/// Checks the `webhook:` and `mailto:` actions of every alarm against the settings.
fn check_actions(
    check: &mut FieldChecker<'_>,
    written: &FileActions,
    settings: &NotificationSettings,
) {
    for action in &written.actions {
        let text = action.text.trim();
        let label = action
            .name
            .as_deref()
            .map_or_else(|| format!("[{}]", action.index), |n| n.trim().to_owned());
        let path = format!(
            "{}.{label}.{}[{}]",
            action.list, action.key, action.position
        );
        if let Some(name) = text.strip_prefix(NAMED_WEBHOOK_PREFIX) {
            if settings.webhook(name).is_none() {
                let known: Vec<&str> = settings.webhooks.iter().map(|w| w.name.as_str()).collect();
                check.push(
                    action.pos,
                    path,
                    Rule::Reference,
                    if known.is_empty() {
                        format!(
                            "names the webhook {name:?}, but notifications.webhooks defines none"
                        )
                    } else {
                        format!(
                            "names the webhook {name:?}, which notifications.webhooks does not define (defined: {})",
                            known.join(", ")
                        )
                    },
                );
            }
        } else if text.starts_with("mailto:") && settings.smtp.is_none() {
            check.push(
                action.pos,
                path,
                Rule::Reference,
                "e-mail actions need an SMTP server: add notifications.smtp",
            );
        }
    }
}

/// The environment variables and files the `notifications:` sections of `files` name
/// (`smtp.password_env` / `password_file`, `webhooks[].secret_env` / `secret_file`,
/// `webhooks[].routing_key_env` / `routing_key_file`, and the `ca_file` CA bundles; a
/// relative path resolved against the naming file's folder), each at the position of its
/// value: the binary checks that they are set or readable
/// ([`crate::validate::Requirement`]; `serve` cannot send without them). Files that are not
/// YAML are skipped.
pub fn requirements<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
) -> Vec<crate::validate::Requirement> {
    files
        .iter()
        .flat_map(|(p, t)| requirements_of_document(&Document::parse(p.as_ref(), t.as_ref())))
        .collect()
}

/// The requirements of the `notifications:` section of one parsed file, as [`requirements`].
pub fn requirements_of_document(doc: &Document) -> Vec<crate::validate::Requirement> {
    use crate::validate::{Need, Requirement};
    let mut out = Vec::new();
    let Some(section) = doc.section("notifications").and_then(Node::as_mapping) else {
        return out;
    };
    let mut need = |node: &MarkedMappingNode, key: &str, path: String| {
        if let Some(Node::Scalar(v)) = node.get_node(key) {
            let value = v.as_str().trim();
            if !matches!(value, "" | "~" | "null") {
                out.push(Requirement {
                    file: doc.file().to_owned(),
                    pos: pos_of(v.span()),
                    path,
                    need: if key.ends_with("_env") {
                        Need::EnvVar(value.to_owned())
                    } else {
                        Need::File(resolve_path(doc.file(), value))
                    },
                });
            }
        }
    };
    if let Some(smtp) = section.get_node("smtp").and_then(Node::as_mapping) {
        for key in ["password_env", "password_file", "ca_file"] {
            need(smtp, key, format!("notifications.smtp.{key}"));
        }
    }
    if let Some(Node::Sequence(hooks)) = section.get_node("webhooks") {
        for (i, hook) in hooks.iter().enumerate() {
            let Some(hook) = hook.as_mapping() else {
                continue;
            };
            let label = hook
                .get_scalar("name")
                .map_or_else(|| format!("[{i}]"), |n| format!(".{}", n.as_str().trim()));
            for key in [
                "secret_env",
                "secret_file",
                "routing_key_env",
                "routing_key_file",
                "ca_file",
            ] {
                need(hook, key, format!("notifications.webhooks{label}.{key}"));
            }
        }
    }
    out
}
