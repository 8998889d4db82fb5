//! Routing: one accountable department queue, the queues to notify, deadlines
//! and the reasons that chose them, all from `config/triage.toml`.
//!
//! Owner rules pick the queue (first match wins); escalation rules then apply
//! in order: they may raise ordinal labels (severity, urgency), change the
//! owner, add queues to notify and tighten deadlines. Every effect is written
//! into `reasons`, so an agent can see why a case landed where it did.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::{parse_duration, LabelCondition, TriageConfig};
use crate::model::Manifest;
use crate::signals::Signal;

/// Where a complaint goes and by when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub queue: String,
    pub notify: Vec<String>,
    pub registration_due: String,
    pub first_response_due: String,
    pub resolution_due: String,
    pub reasons: Vec<String>,
}

/// An ordinal label lifted by a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raised {
    pub axis: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

struct Escalation {
    when: LabelCondition,
    signals: Vec<String>,
    raise: Vec<(String, String)>,
    owner: Option<String>,
    notify: Vec<String>,
    first_response: Option<Duration>,
    resolution_working_days: Option<u32>,
    reason: String,
}

/// Compiled routing policy.
pub struct Router {
    owners: Vec<(LabelCondition, String, String)>,
    escalations: Vec<Escalation>,
    ordinal: BTreeMap<String, Vec<String>>,
    first_response: BTreeMap<String, Duration>,
    first_response_axis: String,
    registration: Duration,
    resolution_days: i64,
    holidays: HashSet<NaiveDate>,
    tz: Tz,
}

fn matches(cond: &LabelCondition, labels: &BTreeMap<String, String>) -> bool {
    cond.iter()
        .all(|(axis, allowed)| labels.get(axis).is_some_and(|l| allowed.contains(l)))
}

impl Router {
    /// Compile the policy, checking every queue, axis, label and signal it names.
    pub fn new(
        cfg: &TriageConfig,
        manifest: &Manifest,
        signal_names: &[&str],
    ) -> Result<Self, String> {
        let check_queue = |q: &str, ctx: &str| -> Result<(), String> {
            if cfg.queues.contains_key(q) {
                Ok(())
            } else {
                Err(format!("{ctx} names queue `{q}`, which is not in [queues]"))
            }
        };
        let check_label = |axis: &str, label: &str, ctx: &str| -> Result<(), String> {
            let head = manifest.head(axis).ok_or_else(|| {
                format!("{ctx} names axis `{axis}`, which the model does not predict")
            })?;
            if head.index_of(label).is_none() {
                return Err(format!(
                    "{ctx} names {axis} label `{label}`; the model's labels are {}",
                    head.labels.join(", ")
                ));
            }
            Ok(())
        };
        let check_cond = |cond: &LabelCondition, ctx: &str| -> Result<(), String> {
            for (axis, labels) in cond {
                for l in labels {
                    check_label(axis, l, ctx)?;
                }
            }
            Ok(())
        };
        let mut owners = Vec::new();
        for (i, r) in cfg.routing.owner.iter().enumerate() {
            let ctx = format!("routing.owner rule {}", i + 1);
            check_queue(&r.queue, &ctx)?;
            check_cond(&r.when, &ctx)?;
            owners.push((r.when.clone(), r.queue.clone(), r.reason.clone()));
        }
        if !owners.last().is_some_and(|(w, _, _)| w.is_empty()) {
            return Err(
                "the last routing.owner rule must have an empty `when` (a fallback queue)".into(),
            );
        }
        let ordinal: BTreeMap<String, Vec<String>> = manifest
            .heads
            .iter()
            .filter(|h| h.ordinal)
            .map(|h| (h.name.clone(), h.labels.clone()))
            .collect();
        let mut escalations = Vec::new();
        for (i, r) in cfg.routing.escalation.iter().enumerate() {
            let ctx = format!("routing.escalation rule {}", i + 1);
            check_cond(&r.when, &ctx)?;
            for s in &r.signals {
                if !signal_names.contains(&s.as_str()) {
                    return Err(format!(
                        "{ctx} names signal `{s}`, which signals.toml does not define"
                    ));
                }
            }
            for (axis, label) in &r.raise {
                check_label(axis, label, &ctx)?;
                if !ordinal.contains_key(axis) {
                    return Err(format!(
                        "{ctx} raises `{axis}`, which is not an ordinal axis in the manifest"
                    ));
                }
            }
            if let Some(q) = &r.owner {
                check_queue(q, &ctx)?;
            }
            for q in &r.notify {
                check_queue(q, &ctx)?;
            }
            let first_response = r
                .first_response
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("{ctx}: {e}"))?;
            escalations.push(Escalation {
                when: r.when.clone(),
                signals: r.signals.clone(),
                raise: r
                    .raise
                    .iter()
                    .map(|(a, l)| (a.clone(), l.clone()))
                    .collect(),
                owner: r.owner.clone(),
                notify: r.notify.clone(),
                first_response,
                resolution_working_days: r.resolution_working_days,
                reason: r.reason.clone(),
            });
        }
        let d = &cfg.deadlines;
        let axis = d.first_response_axis.as_str();
        let mut first_response = BTreeMap::new();
        for (label, dur) in &d.first_response {
            check_label(axis, label, "deadlines.first_response")?;
            first_response.insert(
                label.clone(),
                parse_duration(dur)
                    .map_err(|e| format!("deadlines.first_response.{label}: {e}"))?,
            );
        }
        if let Some(head) = manifest.head(axis) {
            if let Some(missing) = head
                .labels
                .iter()
                .find(|l| !first_response.contains_key(*l))
            {
                return Err(format!(
                    "deadlines.first_response has no entry for {axis} `{missing}`"
                ));
            }
        }
        let holidays = d
            .holidays
            .iter()
            .map(|h| {
                NaiveDate::parse_from_str(h, "%Y-%m-%d")
                    .map_err(|_| format!("deadlines.holidays: `{h}` is not YYYY-MM-DD"))
            })
            .collect::<Result<_, _>>()?;
        let tz: Tz = cfg
            .timezone
            .parse()
            .map_err(|_| format!("timezone `{}` is not an IANA time zone", cfg.timezone))?;
        Ok(Self {
            owners,
            escalations,
            ordinal,
            first_response,
            first_response_axis: axis.into(),
            registration: parse_duration(&d.registration)
                .map_err(|e| format!("deadlines.registration: {e}"))?,
            resolution_days: d.resolution_days as i64,
            holidays,
            tz,
        })
    }

    /// Route a complaint. `labels` (axis → label) may be raised in place; each
    /// raise is returned and also explained in the route's reasons.
    pub fn route(
        &self,
        labels: &mut BTreeMap<String, String>,
        signals: &[Signal],
        received: DateTime<Utc>,
    ) -> (Route, Vec<Raised>) {
        let (_, owner, owner_reason) = self
            .owners
            .iter()
            .find(|(w, _, _)| matches(w, labels))
            .expect("fallback owner rule");
        let mut queue = owner.clone();
        let mut notify: Vec<String> = Vec::new();
        let mut reasons = vec![owner_reason.clone()];
        let mut raised = Vec::new();
        let mut first_override: Option<Duration> = None;
        let mut working_days: Option<u32> = None;
        let fired: HashSet<&str> = signals.iter().map(|s| s.name.as_str()).collect();
        for esc in &self.escalations {
            if !matches(&esc.when, labels) {
                continue;
            }
            if !esc.signals.is_empty() && !esc.signals.iter().any(|s| fired.contains(s.as_str())) {
                continue;
            }
            reasons.push(esc.reason.clone());
            for (axis, target) in &esc.raise {
                let order = &self.ordinal[axis];
                let current = labels.get(axis).cloned().unwrap_or_default();
                let rank = |l: &str| order.iter().position(|x| x == l);
                if rank(&current).unwrap_or(0) < rank(target).unwrap_or(0) {
                    let note = format!("{axis} 由 {current} 上调为 {target}（{}）", esc.reason);
                    reasons.push(note);
                    raised.push(Raised {
                        axis: axis.clone(),
                        from: current,
                        to: target.clone(),
                        reason: esc.reason.clone(),
                    });
                    labels.insert(axis.clone(), target.clone());
                }
            }
            if let Some(o) = &esc.owner {
                if *o != queue {
                    notify.push(std::mem::replace(&mut queue, o.clone()));
                }
            }
            notify.extend(esc.notify.iter().cloned());
            if let Some(d) = esc.first_response {
                first_override = Some(first_override.map_or(d, |x| x.min(d)));
            }
            if let Some(w) = esc.resolution_working_days {
                working_days = Some(working_days.map_or(w, |x| x.min(w)));
            }
        }
        let mut seen = HashSet::new();
        notify.retain(|q| *q != queue && seen.insert(q.clone()));

        let local = received.with_timezone(&self.tz);
        let stamp = |t: DateTime<Tz>| t.to_rfc3339_opts(SecondsFormat::Secs, false);
        let urgency = labels
            .get(&self.first_response_axis)
            .and_then(|u| self.first_response.get(u));
        let mut first = urgency.copied().unwrap_or(Duration::hours(48));
        if let Some(o) = first_override {
            first = first.min(o);
        }
        let calendar_due = local + Duration::days(self.resolution_days);
        let resolution_due = match working_days {
            Some(w) => self.add_working_days(local, w).min(calendar_due),
            None => calendar_due,
        };
        let route = Route {
            queue,
            notify,
            registration_due: stamp(local + self.registration),
            first_response_due: stamp(local + first),
            resolution_due: stamp(resolution_due),
            reasons,
        };
        (route, raised)
    }

    fn is_working_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// `start` plus `n` working days, same local time of day.
    pub fn add_working_days(&self, start: DateTime<Tz>, n: u32) -> DateTime<Tz> {
        let mut date = start.date_naive();
        let mut left = n;
        while left > 0 {
            date = date.succ_opt().expect("date in range");
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        let naive = date.and_time(start.time());
        self.tz
            .from_local_datetime(&naive)
            .earliest()
            .unwrap_or(start + Duration::days(n as i64))
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        let heads = serde_json::json!([
            {"name": "product", "output": "product", "labels": ["credit_card", "account_deposit", "loan", "online_lending", "payment", "wealth", "insurance", "other"]},
            {"name": "category", "output": "category", "labels": ["service_quality", "system_facility", "process_rules", "marketing_sales", "disclosure_terms", "pricing_fees", "product_returns", "fund_security", "info_security", "debt_collection", "claims_surrender", "non_complaint"]},
            {"name": "severity", "output": "severity", "ordinal": true, "labels": ["low", "medium", "high", "critical"]},
            {"name": "urgency", "output": "urgency", "ordinal": true, "labels": ["normal", "high", "immediate"]},
            {"name": "sentiment", "output": "sentiment", "labels": ["positive", "neutral", "negative", "very_negative"]}
        ]);
        serde_json::from_value(serde_json::json!({
            "name": "t", "version": "1", "onnx": "m.onnx", "tokenizer": "t.json",
            "encoder": {"kind": "features", "max_tokens": 10},
            "inputs": [{"name": "input_ids", "role": "ids"}], "heads": heads
        }))
        .unwrap()
    }

    fn config() -> TriageConfig {
        TriageConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/triage.toml"
        )))
        .unwrap()
    }

    const SIGNALS: &[&str] = &[
        "self_harm_violence",
        "media_exposure",
        "group_complaint",
        "regulator_intent",
        "lawsuit_police",
        "regulator_channel",
        "repeat_complaint",
        "personal_data",
        "large_amount",
    ];

    fn router() -> Router {
        Router::new(&config(), &manifest(), SIGNALS).unwrap()
    }

    fn labels(p: &str, c: &str, sev: &str, urg: &str) -> BTreeMap<String, String> {
        [
            ("product", p),
            ("category", c),
            ("severity", sev),
            ("urgency", urg),
            ("sentiment", "negative"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn signal(name: &str) -> Signal {
        Signal {
            name: name.into(),
            evidence: "x".into(),
        }
    }

    // Monday 2026-11-23 10:00 in Shanghai
    fn received() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn owner_follows_category_then_product_then_fallback() {
        let r = router();
        let q = |p: &str, c: &str| {
            r.route(&mut labels(p, c, "low", "normal"), &[], received())
                .0
                .queue
        };
        assert_eq!(q("credit_card", "fund_security"), "anti_fraud");
        assert_eq!(q("credit_card", "pricing_fees"), "card_center");
        assert_eq!(q("loan", "debt_collection"), "collections_oversight");
        assert_eq!(q("wealth", "product_returns"), "wealth");
        assert_eq!(q("payment", "process_rules"), "retail_ops");
        assert_eq!(q("insurance", "non_complaint"), "customer_service");
    }

    #[test]
    fn deadlines_follow_urgency_in_shanghai_time() {
        let r = router();
        let (route, _) = r.route(
            &mut labels("credit_card", "pricing_fees", "low", "normal"),
            &[],
            received(),
        );
        assert_eq!(route.first_response_due, "2026-11-25T10:00:00+08:00");
        assert_eq!(route.registration_due, "2026-11-24T10:00:00+08:00");
        assert_eq!(route.resolution_due, "2026-12-08T10:00:00+08:00");
        let (route, _) = r.route(
            &mut labels("credit_card", "pricing_fees", "low", "immediate"),
            &[],
            received(),
        );
        assert_eq!(route.first_response_due, "2026-11-23T12:00:00+08:00");
    }

    #[test]
    fn self_harm_raises_to_critical_and_hands_over_to_consumer_protection() {
        let r = router();
        let mut l = labels("online_lending", "debt_collection", "high", "high");
        let (route, raised) = r.route(&mut l, &[signal("self_harm_violence")], received());
        assert_eq!(l["severity"], "critical");
        assert_eq!(l["urgency"], "immediate");
        assert_eq!(raised.len(), 2);
        assert_eq!(route.queue, "consumer_protection");
        assert!(route.notify.contains(&"crisis".to_string()));
        assert!(route.notify.contains(&"collections_oversight".to_string()));
        assert!(route
            .reasons
            .iter()
            .any(|x| x.contains("severity 由 high 上调为 critical")));
        // critical: 7 working days, Monday → next Wednesday
        assert_eq!(route.resolution_due, "2026-12-02T10:00:00+08:00");
    }

    #[test]
    fn regulator_and_repeat_notify_consumer_protection_without_lowering() {
        let r = router();
        let mut l = labels("credit_card", "pricing_fees", "critical", "normal");
        let (route, raised) = r.route(
            &mut l,
            &[signal("regulator_channel"), signal("repeat_complaint")],
            received(),
        );
        assert!(raised.is_empty(), "never lowers a label: {raised:?}");
        assert_eq!(route.queue, "consumer_protection");
        assert!(route.notify.contains(&"card_center".to_string()));
    }

    #[test]
    fn fraud_in_progress_goes_to_anti_fraud_within_30_minutes() {
        let r = router();
        let (route, _) = r.route(
            &mut labels("payment", "fund_security", "critical", "immediate"),
            &[],
            received(),
        );
        assert_eq!(route.queue, "anti_fraud");
        assert!(route.notify.contains(&"consumer_protection".to_string()));
        assert_eq!(route.first_response_due, "2026-11-23T10:30:00+08:00");
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let r = router();
        let fri = DateTime::parse_from_rfc3339("2026-09-30T09:00:00+08:00")
            .unwrap()
            .with_timezone(&r.timezone());
        // 10-01, 10-02, 10-05..07 are holidays; 10-03/04 weekend
        assert_eq!(
            r.add_working_days(fri, 1).date_naive().to_string(),
            "2026-10-08"
        );
    }

    #[test]
    fn config_naming_unknown_things_is_rejected() {
        let mut cfg = config();
        cfg.routing.owner[0].queue = "nowhere".into();
        assert!(Router::new(&cfg, &manifest(), SIGNALS)
            .err()
            .unwrap()
            .contains("queue `nowhere`"));
        let mut cfg = config();
        cfg.routing.escalation[0].signals = vec!["telepathy".into()];
        assert!(Router::new(&cfg, &manifest(), SIGNALS)
            .err()
            .unwrap()
            .contains("signal `telepathy`"));
        let mut cfg = config();
        cfg.routing.owner[0]
            .when
            .insert("category".into(), vec!["fraud".into()]);
        assert!(Router::new(&cfg, &manifest(), SIGNALS)
            .err()
            .unwrap()
            .contains("category label `fraud`"));
        let mut cfg = config();
        cfg.deadlines.first_response.remove("high");
        assert!(Router::new(&cfg, &manifest(), SIGNALS)
            .err()
            .unwrap()
            .contains("no entry for urgency `high`"));
    }
}
