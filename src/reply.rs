//! Drafting the suggested reply an agent edits before sending, from templates
//! in `config/replies/`, with the seven elements `routing.md` requires, a tone
//! chosen by labels, and a compliance check that rejects a draft containing
//! unmasked personal data or a promised compensation amount.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::config::{LabelCondition, TriageConfig};
use crate::error::LoadError;
use crate::signals::Signal;
use crate::text::pii;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplatesFile {
    acknowledgement: String,
    restatement: String,
    amounts_clause: String,
    handling: String,
    remedies: String,
    signoff: String,
    empathy: Vec<ToneRule>,
    #[serde(default)]
    safety: Vec<SafetyRule>,
    compliance: ComplianceSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToneRule {
    #[serde(default)]
    when: LabelCondition,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SafetyRule {
    #[serde(default)]
    when: LabelCondition,
    #[serde(default)]
    signals: Vec<String>,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComplianceSpec {
    forbidden: Vec<String>,
}

/// The drafted reply and the outcome of its compliance check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The draft, or `None` when the compliance check rejected it.
    pub text: Option<String>,
    /// Names of the elements present, in order.
    pub elements: Vec<String>,
    pub compliance: Compliance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    pub passed: bool,
    pub problems: Vec<String>,
}

/// Values substituted into the templates; all already masked and display-ready.
pub struct ReplyFacts<'a> {
    pub case_id: &'a str,
    pub channel: &'a str,
    pub received: &'a str,
    /// Axis → display name of its label; each axis is a placeholder (`{product}`).
    pub display_labels: &'a BTreeMap<String, String>,
    pub amounts: &'a [f64],
    pub queue: &'a str,
    pub first_response_due: &'a str,
    pub resolution_due: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub signals: &'a [Signal],
}

/// Placeholders besides the model's axis names.
const PLACEHOLDERS: &[&str] = &[
    "case_id",
    "channel",
    "received",
    "amounts",
    "queue",
    "first_response_due",
    "resolution_due",
    "hotline",
    "institution",
    "list",
];

/// Compiled templates and compliance rules.
pub struct ReplyDrafter {
    t: TemplatesFile,
    forbidden: Vec<Regex>,
    hotline: String,
    institution: String,
}

fn matches(cond: &LabelCondition, labels: &BTreeMap<String, String>) -> bool {
    cond.iter()
        .all(|(axis, allowed)| labels.get(axis).is_some_and(|l| allowed.contains(l)))
}

/// Replace `{name}` placeholders; unknown names are left for validation to catch.
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn unknown_placeholder(template: &str, axes: &[&str]) -> Option<String> {
    let re = Regex::new(r"\{([^{}]*)\}").unwrap();
    let unknown = re
        .captures_iter(template)
        .map(|c| c[1].to_owned())
        .find(|n| !PLACEHOLDERS.contains(&n.as_str()) && !axes.contains(&n.as_str()));
    unknown
}

/// Format an amount the way a letter would: 50000 → 50,000元; 1234.5 → 1,234.50元.
pub fn format_amount(v: f64) -> String {
    let whole = v.trunc() as i64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let cents = ((v - whole as f64) * 100.0).round() as i64;
    if cents > 0 {
        format!("{grouped}.{cents:02}元")
    } else {
        format!("{grouped}元")
    }
}

impl ReplyDrafter {
    /// Load templates; `axes` are the model's axis names (each is a placeholder).
    pub fn load(
        path: &Path,
        cfg: &TriageConfig,
        signal_names: &[&str],
        axes: &[&str],
    ) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
        Self::from_toml(&text, cfg, signal_names, axes).map_err(|m| LoadError::invalid(path, m))
    }

    pub fn from_toml(
        text: &str,
        cfg: &TriageConfig,
        signal_names: &[&str],
        axes: &[&str],
    ) -> Result<Self, String> {
        let t: TemplatesFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut all: Vec<&str> = vec![
            &t.acknowledgement,
            &t.restatement,
            &t.amounts_clause,
            &t.handling,
            &t.remedies,
            &t.signoff,
        ];
        all.extend(t.empathy.iter().map(|r| r.text.as_str()));
        all.extend(t.safety.iter().map(|r| r.text.as_str()));
        if let Some(name) = all.iter().find_map(|s| unknown_placeholder(s, axes)) {
            return Err(format!(
                "unknown placeholder {{{name}}}; known: {}, and the model's axes {}",
                PLACEHOLDERS.join(", "),
                axes.join(", ")
            ));
        }
        if !t.empathy.last().is_some_and(|r| r.when.is_empty()) {
            return Err(
                "the last [[empathy]] rule must have an empty `when` (the default tone)".into(),
            );
        }
        for s in t.safety.iter().flat_map(|r| &r.signals) {
            if !signal_names.contains(&s.as_str()) {
                return Err(format!(
                    "[[safety]] names signal `{s}`, which signals.toml does not define"
                ));
            }
        }
        let forbidden = t
            .compliance
            .forbidden
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("compliance pattern `{p}` is invalid: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            t,
            forbidden,
            hotline: cfg.reply.hotline.clone(),
            institution: cfg.reply.institution.clone(),
        })
    }

    pub fn draft(&self, f: &ReplyFacts) -> Reply {
        let amounts = if f.amounts.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = f.amounts.iter().map(|a| format_amount(*a)).collect();
            render(&self.t.amounts_clause, &[("list", &list.join("、"))])
        };
        let mut vars: Vec<(&str, &str)> = vec![
            ("case_id", f.case_id),
            ("channel", f.channel),
            ("received", f.received),
            ("amounts", &amounts),
            ("queue", f.queue),
            ("first_response_due", f.first_response_due),
            ("resolution_due", f.resolution_due),
            ("hotline", &self.hotline),
            ("institution", &self.institution),
        ];
        vars.extend(
            f.display_labels
                .iter()
                .map(|(axis, name)| (axis.as_str(), name.as_str())),
        );
        let mut parts: Vec<(&str, String)> = Vec::with_capacity(7);
        parts.push(("acknowledgement", render(&self.t.acknowledgement, &vars)));
        if let Some(rule) = self.t.empathy.iter().find(|r| matches(&r.when, f.labels)) {
            parts.push(("empathy", render(&rule.text, &vars)));
        }
        parts.push(("restatement", render(&self.t.restatement, &vars)));
        parts.push(("handling", render(&self.t.handling, &vars)));
        let safety: Vec<String> = self
            .t
            .safety
            .iter()
            .filter(|r| {
                let labels_ok = r.when.is_empty() || matches(&r.when, f.labels);
                let signals_ok = r.signals.is_empty()
                    || r.signals
                        .iter()
                        .any(|s| f.signals.iter().any(|x| &x.name == s));
                labels_ok && signals_ok && !(r.when.is_empty() && r.signals.is_empty())
            })
            .map(|r| render(&r.text, &vars))
            .collect();
        if !safety.is_empty() {
            parts.push(("safety", safety.join("")));
        }
        parts.push(("remedies", render(&self.t.remedies, &vars)));
        parts.push(("signoff", render(&self.t.signoff, &vars)));
        let text: String = parts
            .iter()
            .map(|(_, p)| p.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let compliance = self.check(&text);
        Reply {
            text: compliance.passed.then_some(text),
            elements: parts.iter().map(|(n, _)| n.to_string()).collect(),
            compliance,
        }
    }

    /// Compliance check of a (possibly agent-edited) draft.
    pub fn check(&self, text: &str) -> Compliance {
        let mut problems = Vec::new();
        let (_, found) = pii::mask(text);
        for f in found {
            problems.push(format!("unmasked personal data ({})", f.kind.as_str()));
        }
        for re in &self.forbidden {
            if let Some(m) = re.find(text) {
                problems.push(format!("forbidden wording: {}", m.as_str()));
            }
        }
        Compliance {
            passed: problems.is_empty(),
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_substitutes_and_keeps_unknown() {
        assert_eq!(render("a{x}b{y}c{", &[("x", "1")]), "a1b{y}c{");
    }

    fn shipped() -> (String, TriageConfig) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = TriageConfig::load(&root.join("config/triage.toml")).unwrap();
        (
            std::fs::read_to_string(root.join("config/replies/zh-CN.toml")).unwrap(),
            cfg,
        )
    }

    const AXES: &[&str] = &["product", "category", "severity", "urgency", "sentiment"];

    #[test]
    fn placeholders_are_the_fixed_names_plus_the_model_axes() {
        let (text, cfg) = shipped();
        assert!(ReplyDrafter::from_toml(&text, &cfg, &["self_harm_violence"], AXES).is_ok());
        let err = ReplyDrafter::from_toml(&text, &cfg, &["self_harm_violence"], &["severity"])
            .err()
            .unwrap();
        assert!(
            err.contains("unknown placeholder {product}")
                || err.contains("unknown placeholder {category}"),
            "{err}"
        );
        let bad = text.replace("remedies = \"", "remedies = \"{compensation}");
        assert!(
            ReplyDrafter::from_toml(&bad, &cfg, &["self_harm_violence"], AXES)
                .err()
                .unwrap()
                .contains("{compensation}")
        );
        let err = ReplyDrafter::from_toml(&text, &cfg, &[], AXES)
            .err()
            .unwrap();
        assert!(
            err.contains("self_harm_violence"),
            "safety rule names an unknown signal: {err}"
        );
    }

    #[test]
    fn drafts_have_every_element_and_pass_compliance() {
        let (text, cfg) = shipped();
        let drafter = ReplyDrafter::from_toml(&text, &cfg, &["self_harm_violence"], AXES).unwrap();
        let labels: BTreeMap<String, String> = [
            ("product", "loan"),
            ("category", "debt_collection"),
            ("severity", "high"),
            ("urgency", "high"),
            ("sentiment", "negative"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let display: BTreeMap<String, String> = labels
            .iter()
            .map(|(a, l)| (a.clone(), cfg.display_name(a, l).to_owned()))
            .collect();
        let reply = drafter.draft(&ReplyFacts {
            case_id: "C-9",
            channel: "微信",
            received: "2026年11月23日 10:00",
            display_labels: &display,
            amounts: &[5600.0],
            queue: "催收管理",
            first_response_due: "2026年11月24日 10:00",
            resolution_due: "2026年12月08日 10:00",
            labels: &labels,
            signals: &[],
        });
        assert!(reply.compliance.passed, "{:?}", reply.compliance);
        let text = reply.text.unwrap();
        assert_eq!(
            reply.elements,
            [
                "acknowledgement",
                "empathy",
                "restatement",
                "handling",
                "safety",
                "remedies",
                "signoff"
            ]
        );
        for must in [
            "C-9",
            "微信",
            "贷款",
            "债务催收",
            "5,600元",
            "催收管理",
            "2026年12月08日",
            "保留通话录音",
            "调解",
            "仲裁",
            "诉讼",
            "95xxx",
        ] {
            assert!(text.contains(must), "{must} missing from {text}");
        }
        for never in ["high", "debt_collection", "confidence"] {
            assert!(!text.contains(never), "internal label {never} in {text}");
        }
    }

    #[test]
    fn amounts_are_formatted_for_letters() {
        assert_eq!(format_amount(50_000.0), "50,000元");
        assert_eq!(format_amount(1_234.5), "1,234.50元");
        assert_eq!(format_amount(200.0), "200元");
    }
}
