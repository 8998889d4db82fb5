//! `config/triage.toml`: limits, review thresholds, channels, queues, display
//! names, routing rules, deadlines and reply settings. Parsed once and
//! validated against the loaded model (every label it names must be a label of
//! the model) and the signal rules, so a typo fails at start-up, not at 3 a.m.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::LoadError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageConfig {
    pub signals: PathBuf,
    pub replies: PathBuf,
    pub timezone: String,
    pub limits: Limits,
    pub review: Review,
    pub channels: BTreeMap<String, String>,
    pub queues: BTreeMap<String, String>,
    #[serde(default)]
    pub display: BTreeMap<String, BTreeMap<String, String>>,
    pub routing: Routing,
    pub deadlines: Deadlines,
    pub reply: ReplySettings,
    #[serde(default)]
    pub server: ServerSettings,
}

/// `[server]`: how `triage serve` listens and protects itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub request_timeout: String,
    pub queue_capacity: usize,
    pub max_batch: usize,
    pub max_batch_items: usize,
    pub classify_open: bool,
    /// name → key
    pub api_keys: BTreeMap<String, String>,
    /// A new case whose customer has an open case with the same label on this
    /// axis is a repeat…
    pub repeat_axis: String,
    /// …and gets this signal (escalation rules refer to it).
    pub repeat_signal: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 2 << 20,
            request_timeout: "10s".into(),
            queue_capacity: 4096,
            max_batch: 64,
            max_batch_items: 1000,
            classify_open: true,
            api_keys: BTreeMap::new(),
            repeat_axis: "category".into(),
            repeat_signal: "repeat_complaint".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_chars: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub default_min_confidence: f32,
    #[serde(default)]
    pub min_confidence: BTreeMap<String, f32>,
}

impl Review {
    pub fn threshold(&self, axis: &str) -> f32 {
        self.min_confidence
            .get(axis)
            .copied()
            .unwrap_or(self.default_min_confidence)
    }
}

/// Label conditions: every axis named must have one of the listed labels.
pub type LabelCondition = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub owner: Vec<OwnerRule>,
    #[serde(default)]
    pub escalation: Vec<EscalationRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRule {
    #[serde(default)]
    pub when: LabelCondition,
    pub queue: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    #[serde(default)]
    pub when: LabelCondition,
    /// Fires when any of these signals fired (and `when` matches).
    #[serde(default)]
    pub signals: Vec<String>,
    #[serde(default)]
    pub raise: BTreeMap<String, String>,
    pub owner: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    pub first_response: Option<String>,
    pub resolution_working_days: Option<u32>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// The axis whose label picks the first-response time.
    #[serde(default = "default_first_response_axis")]
    pub first_response_axis: String,
    pub registration: String,
    pub resolution_days: u32,
    #[serde(default)]
    pub holidays: Vec<String>,
    /// By urgency label.
    pub first_response: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySettings {
    pub institution: String,
    pub hotline: String,
    /// How the reply names the channel when the complaint came without one.
    #[serde(default = "default_unknown_channel")]
    pub unknown_channel: String,
}

fn default_first_response_axis() -> String {
    "urgency".into()
}

fn default_unknown_channel() -> String {
    "我行受理渠道".into()
}

impl TriageConfig {
    /// Read `path`; relative file references are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
        let mut cfg: TriageConfig =
            toml::from_str(&text).map_err(|e| LoadError::invalid(path, e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.signals = base.join(&cfg.signals);
        cfg.replies = base.join(&cfg.replies);
        if cfg.limits.max_chars == 0 {
            return Err(LoadError::invalid(
                path,
                "limits.max_chars must be positive",
            ));
        }
        parse_duration(&cfg.server.request_timeout)
            .map_err(|e| LoadError::invalid(path, format!("server.request_timeout: {e}")))?;
        if cfg.server.max_batch == 0 || cfg.server.queue_capacity == 0 {
            return Err(LoadError::invalid(
                path,
                "server.max_batch and server.queue_capacity must be positive",
            ));
        }
        Ok(cfg)
    }

    pub fn display_name<'a>(&'a self, axis: &str, label: &'a str) -> &'a str {
        self.display
            .get(axis)
            .and_then(|m| m.get(label))
            .map_or(label, String::as_str)
    }

    pub fn queue_name<'a>(&'a self, queue: &'a str) -> &'a str {
        self.queues.get(queue).map_or(queue, String::as_str)
    }
}

/// Parse `30m`, `2h`, `15d` into a duration.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 30m, 2h or 15d"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(format!("`{s}` is not a duration like 10s, 30m, 2h or 15d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject_garbage() {
        assert_eq!(
            parse_duration("30m").unwrap(),
            chrono::Duration::minutes(30)
        );
        assert_eq!(parse_duration("48h").unwrap(), chrono::Duration::hours(48));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn shipped_config_loads() {
        let cfg = TriageConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/triage.toml"
        )))
        .unwrap();
        assert_eq!(cfg.queue_name("anti_fraud"), "反欺诈中心");
        assert_eq!(cfg.review.threshold("severity"), 0.45);
        assert_eq!(cfg.review.threshold("product"), 0.5);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Limits>("max_chars = 10\nmax_char = 3").unwrap_err();
        assert!(err.to_string().contains("max_char"));
    }
}
