//! Rule signals: facts a human triager looks for first (regulator, lawsuit or
//! media threats, group complaints, vulnerable customers, self-harm, repeats,
//! large amounts, personal data), each reported with the evidence that fired it.
//!
//! The patterns are configuration (`config/signals.toml`), not code; routing
//! rules refer to signals by name. Signals read only the masked text, so their
//! evidence never carries personal data.

use std::collections::HashSet;
use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::text::pii::PiiFinding;

/// A fired signal and what fired it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub name: String,
    pub evidence: String,
}

pub const PERSONAL_DATA: &str = "personal_data";
pub const LARGE_AMOUNT: &str = "large_amount";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalsFile {
    large_amount_threshold: f64,
    #[serde(default)]
    channel_signal: Vec<ChannelSignalSpec>,
    #[serde(default)]
    signal: Vec<PatternSignalSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelSignalSpec {
    channel: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSignalSpec {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    patterns: Vec<String>,
}

struct PatternSignal {
    name: String,
    /// All patterns of the signal joined into one alternation.
    regex: Regex,
}

/// Compiled signal rules.
pub struct SignalDetector {
    patterns: Vec<PatternSignal>,
    channel_signals: Vec<(String, String)>,
    large_amount_threshold: f64,
}

/// Characters of context kept on each side of a match in the evidence.
const EVIDENCE_CONTEXT: usize = 6;

impl SignalDetector {
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
        Self::from_toml(&text).map_err(|m| LoadError::invalid(path, m))
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: SignalsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = HashSet::new();
        let mut patterns = Vec::new();
        for spec in file.signal {
            if !seen.insert(spec.name.clone()) {
                return Err(format!("signal `{}` is defined twice", spec.name));
            }
            if spec.patterns.is_empty() {
                return Err(format!("signal `{}` has no patterns", spec.name));
            }
            let joined = spec
                .patterns
                .iter()
                .map(|p| format!("(?:{p})"))
                .collect::<Vec<_>>()
                .join("|");
            let regex = Regex::new(&joined)
                .map_err(|e| format!("signal `{}` has an invalid pattern: {e}", spec.name))?;
            patterns.push(PatternSignal {
                name: spec.name,
                regex,
            });
        }
        Ok(Self {
            patterns,
            channel_signals: file
                .channel_signal
                .into_iter()
                .map(|c| (c.channel, c.name))
                .collect(),
            large_amount_threshold: file.large_amount_threshold,
        })
    }

    /// Every signal name this detector can emit (for validating routing rules).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.patterns.iter().map(|p| p.name.as_str()).collect();
        names.extend(self.channel_signals.iter().map(|(_, n)| n.as_str()));
        names.push(PERSONAL_DATA);
        names.push(LARGE_AMOUNT);
        names
    }

    /// Signals for one complaint, in a stable order (config order, then built-ins).
    pub fn detect(
        &self,
        masked_text: &str,
        channel: Option<&str>,
        amounts: &[f64],
        pii: &[PiiFinding],
    ) -> Vec<Signal> {
        let mut out = Vec::new();
        if let Some(ch) = channel {
            for (c, name) in &self.channel_signals {
                if c == ch {
                    out.push(Signal {
                        name: name.clone(),
                        evidence: format!("channel: {ch}"),
                    });
                }
            }
        }
        for p in &self.patterns {
            if let Some(m) = p.regex.find(masked_text) {
                out.push(Signal {
                    name: p.name.clone(),
                    evidence: evidence(masked_text, m.start(), m.end()),
                });
            }
        }
        if let Some(max) = amounts.iter().copied().reduce(f64::max) {
            if max >= self.large_amount_threshold {
                out.push(Signal {
                    name: LARGE_AMOUNT.into(),
                    evidence: format!("{max}元"),
                });
            }
        }
        if !pii.is_empty() {
            let found: Vec<String> = pii
                .iter()
                .map(|f| format!("{}: {}", f.kind.as_str(), f.masked))
                .collect();
            out.push(Signal {
                name: PERSONAL_DATA.into(),
                evidence: found.join("; "),
            });
        }
        out
    }
}

/// The match with a few characters of context on each side, on char boundaries.
fn evidence(text: &str, start: usize, end: usize) -> String {
    let before: String = text[..start]
        .chars()
        .rev()
        .take(EVIDENCE_CONTEXT)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let after: String = text[end..].chars().take(EVIDENCE_CONTEXT).collect();
    format!("{before}{}{after}", &text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::pii::PiiKind;

    fn detector() -> SignalDetector {
        SignalDetector::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/signals.toml"
        )))
        .unwrap()
    }

    fn fired(text: &str) -> Vec<Signal> {
        detector().detect(text, Some("app"), &[], &[])
    }

    fn one(text: &str, name: &str) -> Signal {
        fired(text)
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} did not fire on {text}"))
    }

    #[test]
    fn each_pattern_signal_fires_with_its_evidence() {
        assert!(one("再不处理我就打12378投诉你们", "regulator_intent")
            .evidence
            .contains("12378"));
        assert!(one("我已经请了律师准备起诉", "lawsuit_police")
            .evidence
            .contains("律师"));
        assert!(one("不解决我就发抖音曝光", "media_exposure")
            .evidence
            .contains("抖音"));
        assert!(one("我们32名客户联名投诉", "group_complaint")
            .evidence
            .contains("联名"));
        assert!(one("我母亲78岁了被骗买了保险", "vulnerable_customer")
            .evidence
            .contains("78岁"));
        assert!(one("逼得我不想活了", "self_harm_violence")
            .evidence
            .contains("不想活"));
        assert!(one("这是我第三次打电话了", "repeat_complaint")
            .evidence
            .contains("第三次"));
    }

    #[test]
    fn evidence_keeps_a_little_context() {
        let s = one(
            "你们再拖下去我就去找金融监管总局反映情况，说到做到",
            "regulator_intent",
        );
        assert_eq!(s.evidence, "下去我就去找金融监管总局反映情况");
    }

    #[test]
    fn calm_enquiries_fire_nothing() {
        assert!(fired("请问信用卡年费是多少？").is_empty());
    }

    #[test]
    fn channel_amount_and_personal_data_signals() {
        let pii = vec![PiiFinding {
            kind: PiiKind::Mobile,
            masked: "138****5678".into(),
        }];
        let s = detector().detect("卡被盗刷", Some("regulator"), &[50_000.0], &pii);
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["regulator_channel", "large_amount", "personal_data"]
        );
        assert_eq!(s[2].evidence, "mobile: 138****5678");
        assert!(detector().detect("小额", None, &[200.0], &[]).is_empty());
    }

    #[test]
    fn bad_config_is_reported() {
        let err = SignalDetector::from_toml(
            "large_amount_threshold = 1.0\n[[signal]]\nname='x'\npatterns=['(']",
        )
        .err()
        .unwrap();
        assert!(err.contains("signal `x` has an invalid pattern"), "{err}");
    }
}
