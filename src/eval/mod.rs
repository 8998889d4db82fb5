//! Evaluation: metrics shared with the trainer, and the `triage eval` report
//! that scores the whole engine (model plus rule signals, exactly as it
//! answers in production) on any labelled JSONL file, next to two baselines
//! (majority class, keyword rules).

pub mod metrics;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::engine::{Complaint, Engine};
use crate::text::normalise::NormaliseLimits;
use crate::train::corpus::{parse_record, AxisDef, Record, Taxonomy};
use metrics::AxisMetrics;

/// Which predictor an evaluation scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Predictor {
    Engine,
    Majority,
    Keywords,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueMetrics {
    pub queue: String,
    /// Cases whose true labels route here.
    pub expected: usize,
    /// Cases the engine routed here.
    pub predicted: usize,
    pub correct: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub predictor: Predictor,
    pub examples: usize,
    pub skipped: Vec<String>,
    pub axes: Vec<AxisMetrics>,
    /// Recall of the highest level of each ordinal axis (critical, immediate).
    pub top_level_recall: BTreeMap<String, (String, f64)>,
    /// Engine only: routing from predicted labels vs routing from true labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueMetrics>,
}

/// The taxonomy a model directory implies (its heads and labels).
pub fn taxonomy_of(engine: &Engine) -> Taxonomy {
    Taxonomy {
        axes: engine
            .manifest()
            .heads
            .iter()
            .map(|h| AxisDef {
                name: h.name.clone(),
                labels: h.labels.clone(),
                ordinal: h.ordinal,
            })
            .collect(),
    }
}

/// Read labelled records; bad lines are reported, not fatal.
pub fn load_labelled(
    path: &Path,
    taxonomy: &Taxonomy,
) -> anyhow::Result<(Vec<Record>, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_record(line, taxonomy) {
            Ok(r) => records.push(r),
            Err(e) => skipped.push(format!("line {}: {e}", i + 1)),
        }
    }
    Ok((records, skipped))
}

#[derive(Debug, Deserialize)]
struct KeywordRule {
    label: String,
    keywords: Vec<String>,
}

/// Keyword rules per axis, from `config/keyword_baseline.toml`.
pub struct KeywordBaseline {
    rules: BTreeMap<String, Vec<KeywordRule>>,
}

impl KeywordBaseline {
    pub fn load(path: &Path, taxonomy: &Taxonomy) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let rules: BTreeMap<String, Vec<KeywordRule>> =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        for (axis, list) in &rules {
            let def = taxonomy
                .axes
                .iter()
                .find(|a| &a.name == axis)
                .with_context(|| format!("{}: unknown axis `{axis}`", path.display()))?;
            if let Some(bad) = list.iter().find(|r| !def.labels.contains(&r.label)) {
                anyhow::bail!("{}: unknown {axis} label `{}`", path.display(), bad.label);
            }
        }
        Ok(Self { rules })
    }

    fn predict(&self, axis: &str, text: &str) -> Option<&str> {
        let lower = text.to_lowercase();
        self.rules
            .get(axis)?
            .iter()
            .find(|r| r.keywords.iter().any(|k| lower.contains(k.as_str())))
            .map(|r| r.label.as_str())
    }
}

fn majority(records: &[Record], axis: usize, classes: usize) -> usize {
    let mut n = vec![0usize; classes];
    for r in records {
        n[r.labels[axis]] += 1;
    }
    (0..classes)
        .max_by_key(|&i| (n[i], std::cmp::Reverse(i)))
        .unwrap_or(0)
}

fn report(
    predictor: Predictor,
    taxonomy: &Taxonomy,
    records: &[Record],
    predicted: &[Vec<usize>],
    confidences: Option<&[Vec<f32>]>,
    skipped: Vec<String>,
) -> EvalReport {
    let mut axes = Vec::new();
    let mut top_level_recall = BTreeMap::new();
    for (k, axis) in taxonomy.axes.iter().enumerate() {
        let pairs: Vec<(usize, usize)> = records
            .iter()
            .zip(predicted)
            .map(|(r, p)| (r.labels[k], p[k]))
            .collect();
        let conf: Option<Vec<f32>> = confidences.map(|c| c.iter().map(|x| x[k]).collect());
        let m = AxisMetrics::compute(
            &axis.name,
            &axis.labels,
            &pairs,
            conf.as_deref(),
            axis.ordinal,
        );
        if axis.ordinal {
            let top = axis.labels.last().expect("labels").clone();
            top_level_recall.insert(
                axis.name.clone(),
                (top.clone(), m.recall_of(&top).unwrap_or(0.0)),
            );
        }
        axes.push(m);
    }
    EvalReport {
        predictor,
        examples: records.len(),
        skipped,
        axes,
        top_level_recall,
        routing_accuracy: None,
        queues: Vec::new(),
    }
}

/// Score the engine as it answers in production (labels after rule raises).
pub fn evaluate_engine(engine: &Engine, path: &Path) -> anyhow::Result<EvalReport> {
    let taxonomy = taxonomy_of(engine);
    let (records, mut skipped) = load_labelled(path, &taxonomy)?;
    let complaints: Vec<Complaint> = records
        .iter()
        .map(|r| Complaint {
            id: Some(r.id.clone()),
            text: r.text.clone(),
            channel: r.channel.clone(),
            ..Complaint::default()
        })
        .collect();
    let mut kept = Vec::new();
    let mut predicted = Vec::new();
    let mut confidences = Vec::new();
    let mut queue_pairs = Vec::new();
    for (chunk_r, chunk_c) in records.chunks(256).zip(complaints.chunks(256)) {
        for (r, result) in chunk_r.iter().zip(engine.triage_batch(chunk_c)) {
            match result {
                Ok(t) => {
                    let mut labels = Vec::new();
                    let mut conf = Vec::new();
                    for axis in &taxonomy.axes {
                        let l = &t.labels[&axis.name];
                        labels.push(axis.labels.iter().position(|x| *x == l.value).unwrap_or(0));
                        conf.push(l.confidence);
                    }
                    let truth: BTreeMap<String, String> = taxonomy
                        .axes
                        .iter()
                        .zip(&r.labels)
                        .map(|(a, &i)| (a.name.clone(), a.labels[i].clone()))
                        .collect();
                    let expected = engine.route_labels(truth, &t.signals);
                    queue_pairs.push((expected.queue, t.route.queue.clone()));
                    kept.push(r.clone());
                    predicted.push(labels);
                    confidences.push(conf);
                }
                Err(e) => skipped.push(format!("{}: {e}", r.id)),
            }
        }
    }
    let mut rep = report(
        Predictor::Engine,
        &taxonomy,
        &kept,
        &predicted,
        Some(&confidences),
        skipped,
    );
    let mut queues: BTreeMap<String, QueueMetrics> = BTreeMap::new();
    for (e, p) in &queue_pairs {
        let entry = |q: &String, m: &mut BTreeMap<String, QueueMetrics>| {
            m.entry(q.clone()).or_insert_with(|| QueueMetrics {
                queue: q.clone(),
                expected: 0,
                predicted: 0,
                correct: 0,
            });
        };
        entry(e, &mut queues);
        entry(p, &mut queues);
        queues.get_mut(e).unwrap().expected += 1;
        queues.get_mut(p).unwrap().predicted += 1;
        if e == p {
            queues.get_mut(e).unwrap().correct += 1;
        }
    }
    let correct = queue_pairs.iter().filter(|(e, p)| e == p).count();
    rep.routing_accuracy = Some(if queue_pairs.is_empty() {
        0.0
    } else {
        correct as f64 / queue_pairs.len() as f64
    });
    rep.queues = queues.into_values().collect();
    Ok(rep)
}

/// Score a baseline on the same file.
pub fn evaluate_baseline(
    engine: &Engine,
    path: &Path,
    predictor: Predictor,
    keywords: Option<&KeywordBaseline>,
) -> anyhow::Result<EvalReport> {
    let taxonomy = taxonomy_of(engine);
    let (records, skipped) = load_labelled(path, &taxonomy)?;
    let majority: Vec<usize> = taxonomy
        .axes
        .iter()
        .enumerate()
        .map(|(k, a)| majority(&records, k, a.labels.len()))
        .collect();
    let limits = NormaliseLimits::default();
    let predicted: Vec<Vec<usize>> = records
        .iter()
        .map(|r| {
            let text = crate::text::normalise::normalise(&r.text, &limits).unwrap_or_default();
            taxonomy
                .axes
                .iter()
                .enumerate()
                .map(|(k, a)| match (predictor, keywords) {
                    (Predictor::Keywords, Some(kw)) => kw
                        .predict(&a.name, &text)
                        .and_then(|l| a.labels.iter().position(|x| x == l))
                        .unwrap_or(majority[k]),
                    _ => majority[k],
                })
                .collect()
        })
        .collect();
    Ok(report(
        predictor, &taxonomy, &records, &predicted, None, skipped,
    ))
}

impl EvalReport {
    /// Plain-text report.
    pub fn render(&self) -> String {
        let mut s = format!("{:?} on {} examples", self.predictor, self.examples);
        if !self.skipped.is_empty() {
            s.push_str(&format!(
                " ({} skipped: {})",
                self.skipped.len(),
                self.skipped
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        s.push('\n');
        for m in &self.axes {
            s.push_str(&format!(
                "\n== {} ==  accuracy {:.3}  macro-F1 {:.3}",
                m.axis, m.accuracy, m.macro_f1
            ));
            if let Some(w) = m.within_one {
                s.push_str(&format!("  within-one {w:.3}"));
            }
            if let Some(e) = m.ece {
                s.push_str(&format!("  ECE {e:.3}"));
            }
            s.push_str("\n  label              precision  recall   F1     support\n");
            for c in &m.per_class {
                s.push_str(&format!(
                    "  {:<18} {:>8.3} {:>8.3} {:>6.3} {:>8}\n",
                    c.label, c.precision, c.recall, c.f1, c.support
                ));
            }
            s.push_str("  confusion (rows = true, columns = predicted, in label order):\n");
            for (label, row) in m.labels.iter().zip(&m.confusion) {
                let cells: Vec<String> = row.iter().map(|n| format!("{n:>4}")).collect();
                s.push_str(&format!("  {:<18}{}\n", label, cells.join("")));
            }
        }
        for (axis, (label, r)) in &self.top_level_recall {
            s.push_str(&format!("\nrecall of {axis} `{label}`: {r:.3}"));
        }
        if let Some(a) = self.routing_accuracy {
            s.push_str(&format!(
                "\n\nrouting: {:.3} of cases reach the queue their true labels route to\n",
                a
            ));
            s.push_str("  queue                  expected predicted  correct\n");
            for q in &self.queues {
                s.push_str(&format!(
                    "  {:<22} {:>8} {:>9} {:>8}\n",
                    q.queue, q.expected, q.predicted, q.correct
                ));
            }
        }
        s.push('\n');
        s
    }
}
