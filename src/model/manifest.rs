//! `manifest.json`: the contract between a model directory and the engine.
//! It names the ONNX file, the tokenizer, the inputs to build, each head's
//! output tensor and labels in output order, and how the model was trained.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// ONNX file, relative to the model directory.
    pub onnx: String,
    /// `tokenizers` JSON file, relative to the model directory.
    pub tokenizer: String,
    pub encoder: EncoderSpec,
    /// Model inputs in the order the graph declares them.
    pub inputs: Vec<InputSpec>,
    pub heads: Vec<HeadSpec>,
    /// Training provenance and metrics; free-form for other producers.
    #[serde(default)]
    pub training: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncoderSpec {
    pub kind: EncoderKind,
    /// At most this many tokens per text (longer inputs are truncated).
    pub max_tokens: usize,
    /// jieba user dictionary, relative to the model directory (features encoder).
    #[serde(default)]
    pub user_dict: Option<String>,
    #[serde(default = "default_true")]
    pub hmm: bool,
    /// Character n-gram sizes over runs of Chinese characters (features encoder).
    #[serde(default)]
    pub char_ngrams: Vec<usize>,
    /// Pass each known feature once (binary term frequency; features encoder).
    #[serde(default)]
    pub dedupe: bool,
}

fn default_true() -> bool {
    true
}

/// How text becomes token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// jieba words, character n-grams and context features, looked up in the
    /// tokenizer's WordLevel vocabulary (the shipped model).
    Features,
    /// The tokenizer encodes the normalised text directly (e.g. a BERT WordPiece model).
    Text,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub role: InputRole,
}

/// What an input tensor carries; all are int64 `[batch, tokens]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputRole {
    Ids,
    Mask,
    TypeIds,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadSpec {
    /// Axis name in the result (`product`, `severity`, …).
    pub name: String,
    /// Output tensor name, `[batch, labels]`.
    pub output: String,
    /// Labels in output order.
    pub labels: Vec<String>,
    /// Labels are ordered from least to most (severity, urgency): rules may raise them.
    #[serde(default)]
    pub ordinal: bool,
    /// Whether the output is already a probability distribution or raw logits.
    #[serde(default)]
    pub output_kind: OutputKind,
    /// Softmax temperature fitted on validation data (applied in-graph for `probabilities`).
    #[serde(default = "one")]
    pub temperature: f32,
    /// Decision thresholds: a label is chosen whenever its probability reaches
    /// its threshold, even if another label is more probable (the last such
    /// label in label order wins). Used to reach a recall target for the
    /// costliest misses (severity `critical`, urgency `immediate`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub thresholds: std::collections::BTreeMap<String, f32>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    #[default]
    Probabilities,
    Logits,
}

impl Manifest {
    /// Read and validate `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| LoadError::io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            LoadError::invalid(
                &path,
                format!("{e}; see README 'Model directory' for the format"),
            )
        })?;
        manifest.validate(&path)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<(), LoadError> {
        if self.heads.is_empty() {
            return Err(LoadError::invalid(
                path,
                "no heads: a model must predict at least one axis",
            ));
        }
        for head in &self.heads {
            if head.labels.len() < 2 {
                return Err(LoadError::invalid(
                    path,
                    format!("head `{}` needs at least two labels", head.name),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = head.labels.iter().find(|l| !seen.insert(l.as_str())) {
                return Err(LoadError::invalid(
                    path,
                    format!("head `{}` lists label `{dup}` twice", head.name),
                ));
            }
            if let Some(bad) = head.thresholds.keys().find(|l| head.index_of(l).is_none()) {
                return Err(LoadError::invalid(
                    path,
                    format!(
                        "head `{}` has a threshold for unknown label `{bad}`",
                        head.name
                    ),
                ));
            }
            if !(head.temperature.is_finite() && head.temperature > 0.0) {
                return Err(LoadError::invalid(
                    path,
                    format!("head `{}` has a non-positive temperature", head.name),
                ));
            }
        }
        if !self.inputs.iter().any(|i| i.role == InputRole::Ids) {
            return Err(LoadError::invalid(
                path,
                "inputs must include one with role `ids`",
            ));
        }
        if self.encoder.max_tokens == 0 {
            return Err(LoadError::invalid(
                path,
                "encoder.max_tokens must be positive",
            ));
        }
        Ok(())
    }

    pub fn head(&self, name: &str) -> Option<&HeadSpec> {
        self.heads.iter().find(|h| h.name == name)
    }
}

impl HeadSpec {
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The chosen label and the runner-up, applying `thresholds` before argmax.
    pub fn decide(&self, probs: &[f32]) -> (usize, Option<usize>) {
        let argmax = (0..probs.len()).fold(0, |b, i| if probs[i] > probs[b] { i } else { b });
        let forced = (0..probs.len()).rev().find(|&i| {
            self.thresholds
                .get(&self.labels[i])
                .is_some_and(|&t| probs[i] >= t)
                && i != argmax
        });
        let chosen = forced.unwrap_or(argmax);
        let runner = (0..probs.len())
            .filter(|&i| i != chosen)
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]));
        (chosen, runner)
    }
}
