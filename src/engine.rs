//! The engine: loads a model directory and the configuration once, then turns
//! complaints into [`Triage`] results. Every transport (CLI, batch re-scoring,
//! HTTP) calls [`Engine::triage_batch`]; it knows nothing about any of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::TriageConfig;
use crate::error::{LoadError, TriageError};
use crate::model::encoder::FeatureContext;
use crate::model::{Classifier, Encoded, Encoder, Manifest};
use crate::reply::{Reply, ReplyDrafter, ReplyFacts};
use crate::routing::{Route, Router};
use crate::signals::{Signal, SignalDetector};
use crate::text::normalise::NormaliseLimits;
use crate::text::{prepare, PreparedText};

/// A complaint as it arrives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Complaint {
    #[serde(default)]
    pub id: Option<String>,
    pub text: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    /// When the institution received it; defaults to now.
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
}

impl Complaint {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// One candidate label with its calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub value: String,
    pub confidence: f32,
}

/// The result on one axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisLabel {
    pub value: String,
    /// The model's probability for `value` (for a raised label: of the model's own choice).
    pub confidence: f32,
    pub runner_up: Option<Candidate>,
    /// Set when a routing rule raised the label; the model's own prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
}

/// The engine's answer: the wire format shared by CLI, batch and HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    pub id: String,
    pub labels: BTreeMap<String, AxisLabel>,
    pub needs_review: bool,
    #[serde(default)]
    pub review_reasons: Vec<String>,
    pub signals: Vec<Signal>,
    pub amounts: Vec<f64>,
    pub route: Route,
    pub reply: Reply,
    pub text_masked: String,
    pub channel: Option<String>,
    pub received_at: String,
    pub model: ModelInfo,
}

impl Triage {
    pub fn label(&self, axis: &str) -> Option<&str> {
        self.labels.get(axis).map(|l| l.value.as_str())
    }
}

/// Where to load from.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub model_dir: PathBuf,
    pub config: PathBuf,
    /// ONNX Runtime sessions to create (one per concurrent caller).
    pub sessions: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::from("models"),
            config: PathBuf::from("config/triage.toml"),
            sessions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

pub struct Engine {
    cfg: TriageConfig,
    limits: NormaliseLimits,
    manifest: Arc<Manifest>,
    encoder: Encoder,
    classifier: Classifier,
    detector: SignalDetector,
    router: Router,
    drafter: ReplyDrafter,
}

static CASE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Engine {
    pub fn load(opts: &EngineOptions) -> Result<Self, LoadError> {
        let cfg = TriageConfig::load(&opts.config)?;
        let manifest = Arc::new(Manifest::load(&opts.model_dir)?);
        let detector = SignalDetector::load(&cfg.signals)?;
        let names = detector.names();
        let router = Router::new(&cfg, &manifest, &names)
            .map_err(|m| LoadError::invalid(&opts.config, m))?;
        let axes: Vec<&str> = manifest.heads.iter().map(|h| h.name.as_str()).collect();
        let drafter = ReplyDrafter::load(&cfg.replies, &cfg, &names, &axes)?;
        let encoder = Encoder::load(&opts.model_dir, &manifest)?;
        let classifier = Classifier::load(&opts.model_dir, manifest.clone(), opts.sessions)?;
        Ok(Self {
            limits: NormaliseLimits {
                max_chars: cfg.limits.max_chars,
            },
            cfg,
            manifest,
            encoder,
            classifier,
            detector,
            router,
            drafter,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn config(&self) -> &TriageConfig {
        &self.cfg
    }

    pub fn drafter(&self) -> &ReplyDrafter {
        &self.drafter
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Route given labels (e.g. a human's) with given signals: what the
    /// routing policy does independent of the model.
    pub fn route_labels(&self, mut labels: BTreeMap<String, String>, signals: &[Signal]) -> Route {
        self.router.route(&mut labels, signals, Utc::now()).0
    }

    /// Add a signal found outside the text (e.g. the store saw an open case of
    /// the same customer and category) and redo routing and the reply.
    pub fn apply_signal(&self, triage: &mut Triage, signal: Signal) {
        if triage.signals.iter().any(|s| s.name == signal.name) {
            return;
        }
        triage.signals.push(signal);
        let received = DateTime::parse_from_rfc3339(&triage.received_at)
            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
        let (route, reply) = self.route_and_reply(
            &triage.id,
            triage.channel.as_deref(),
            received,
            &mut triage.labels,
            &triage.signals,
            &triage.amounts,
        );
        triage.route = route;
        triage.reply = reply;
    }

    /// Routing (which may raise labels in place) and the drafted reply.
    fn route_and_reply(
        &self,
        id: &str,
        channel: Option<&str>,
        received: DateTime<Utc>,
        labels: &mut BTreeMap<String, AxisLabel>,
        signals: &[Signal],
        amounts: &[f64],
    ) -> (Route, Reply) {
        let mut chosen: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        let (route, raised) = self.router.route(&mut chosen, signals, received);
        for r in raised {
            if let Some(l) = labels.get_mut(&r.axis) {
                l.raised_from.get_or_insert_with(|| l.value.clone());
                l.value = r.to;
            }
        }
        let tz = self.router.timezone();
        let display_time = |rfc: &str| {
            DateTime::parse_from_rfc3339(rfc)
                .map(|t| {
                    t.with_timezone(&tz)
                        .format("%Y年%m月%d日 %H:%M")
                        .to_string()
                })
                .unwrap_or_default()
        };
        let channel_name = channel.map(|ch| self.cfg.channels.get(ch).map_or(ch, String::as_str));
        let display_labels: BTreeMap<String, String> = chosen
            .iter()
            .map(|(axis, label)| (axis.clone(), self.cfg.display_name(axis, label).to_owned()))
            .collect();
        let facts = ReplyFacts {
            case_id: id,
            channel: channel_name.unwrap_or(&self.cfg.reply.unknown_channel),
            received: &received
                .with_timezone(&tz)
                .format("%Y年%m月%d日 %H:%M")
                .to_string(),
            display_labels: &display_labels,
            amounts,
            queue: self.cfg.queue_name(&route.queue),
            first_response_due: &display_time(&route.first_response_due),
            resolution_due: &display_time(&route.resolution_due),
            labels: &chosen,
            signals,
        };
        let reply = self.drafter.draft(&facts);
        (route, reply)
    }

    pub fn triage(&self, complaint: &Complaint) -> Result<Triage, TriageError> {
        self.triage_batch(std::slice::from_ref(complaint))
            .pop()
            .expect("one result per complaint")
    }

    /// Triage many complaints with one model call; one result per input, in order.
    pub fn triage_batch(&self, complaints: &[Complaint]) -> Vec<Result<Triage, TriageError>> {
        let now = Utc::now();
        let mut batch: Vec<Encoded> = Vec::with_capacity(complaints.len());
        let prepared: Vec<Result<PreparedText, TriageError>> = complaints
            .iter()
            .map(|c| {
                let (text, encoded) = self.prepare_one(c)?;
                batch.push(encoded);
                Ok(text)
            })
            .collect();
        let predictions = match self.classifier.predict(&batch) {
            Ok(p) => p,
            Err(e) => {
                return complaints
                    .iter()
                    .map(|_| Err(TriageError::Inference(e.to_string())))
                    .collect()
            }
        };
        let mut predictions = predictions.into_iter();
        complaints
            .iter()
            .zip(prepared)
            .map(|(c, p)| {
                let text = p?;
                let probs = predictions
                    .next()
                    .expect("a prediction per encoded complaint");
                Ok(self.assemble(c, text, &probs, now))
            })
            .collect()
    }

    /// The text stages and encoding of one complaint (no model call).
    pub fn prepare_one(&self, c: &Complaint) -> Result<(PreparedText, Encoded), TriageError> {
        if let Some(ch) = &c.channel {
            if !self.cfg.channels.contains_key(ch) {
                return Err(TriageError::UnknownChannel {
                    channel: ch.clone(),
                    known: self
                        .cfg
                        .channels
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let text = prepare(&c.text, &self.limits)?;
        let ctx = FeatureContext {
            text: &text.masked,
            channel: c.channel.as_deref(),
            amounts: &text.amounts,
        };
        let encoded = self.encoder.encode(&ctx).map_err(TriageError::Inference)?;
        Ok((text, encoded))
    }

    fn assemble(
        &self,
        c: &Complaint,
        text: PreparedText,
        probs: &[Vec<f32>],
        now: DateTime<Utc>,
    ) -> Triage {
        let received = c.received_at.unwrap_or(now);
        let mut labels = BTreeMap::new();
        let mut review_reasons = Vec::new();
        for (head, p) in self.manifest.heads.iter().zip(probs) {
            let (best, second) = head.decide(p);
            let confidence = p[best];
            let threshold = self.cfg.review.threshold(&head.name);
            if confidence < threshold {
                review_reasons.push(format!(
                    "{} confidence {:.3} below {:.3}",
                    head.name, confidence, threshold
                ));
            }
            labels.insert(
                head.name.clone(),
                AxisLabel {
                    value: head.labels[best].clone(),
                    confidence,
                    runner_up: second.map(|s| Candidate {
                        value: head.labels[s].clone(),
                        confidence: p[s],
                    }),
                    raised_from: None,
                },
            );
        }
        let signals =
            self.detector
                .detect(&text.masked, c.channel.as_deref(), &text.amounts, &text.pii);
        let id =
            c.id.clone()
                .unwrap_or_else(|| generate_case_id(&text.masked, received));
        let (route, reply) = self.route_and_reply(
            &id,
            c.channel.as_deref(),
            received,
            &mut labels,
            &signals,
            &text.amounts,
        );
        Triage {
            id,
            needs_review: !review_reasons.is_empty(),
            review_reasons,
            labels,
            signals,
            amounts: text.amounts,
            route,
            reply,
            text_masked: text.masked,
            channel: c.channel.clone(),
            received_at: received
                .with_timezone(&self.router.timezone())
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            model: ModelInfo {
                name: self.manifest.name.clone(),
                version: self.manifest.version.clone(),
            },
        }
    }
}

/// A readable, unique case number when the caller sent no id: C + date + 8 hex.
fn generate_case_id(masked: &str, received: DateTime<Utc>) -> String {
    let n = CASE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = Sha256::new();
    h.update(masked.as_bytes());
    h.update(
        received
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    h.update(n.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let d = h.finalize();
    format!(
        "C{}{:02x}{:02x}{:02x}{:02x}",
        received.format("%Y%m%d"),
        d[0],
        d[1],
        d[2],
        d[3]
    )
}

/// Convenience for tools and tests: the repository's default model and config.
pub fn default_engine(root: &Path) -> Result<Engine, LoadError> {
    Engine::load(&EngineOptions {
        model_dir: root.join("models"),
        config: root.join("config/triage.toml"),
        ..EngineOptions::default()
    })
}
