//! Running the classifier: ONNX Runtime sessions created once and reused,
//! one per worker so concurrent callers do not queue on a single session,
//! and batched inference (one model call for many complaints).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ndarray::Array2;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{LoadError, TriageError};
use crate::model::encoder::Encoded;
use crate::model::manifest::{InputRole, Manifest, OutputKind};
use crate::model::runtime;

/// Most items in one padded model call.
const MAX_GROUP: usize = 64;

/// Per-head probability distributions for one complaint, in manifest head order.
pub type HeadPrediction = Vec<f32>;

/// The loaded model: manifest plus a pool of sessions.
pub struct Classifier {
    manifest: Arc<Manifest>,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl Classifier {
    /// Load `dir/<manifest.onnx>` into `pool_size` sessions (one per thread
    /// that will call [`Classifier::predict`] concurrently).
    pub fn load(dir: &Path, manifest: Arc<Manifest>, pool_size: usize) -> Result<Self, LoadError> {
        let env = runtime::environment()?;
        let path = dir.join(&manifest.onnx);
        let bytes = std::fs::read(&path).map_err(|e| LoadError::io(&path, e))?;
        let mut sessions = Vec::with_capacity(pool_size.max(1));
        for _ in 0..pool_size.max(1) {
            let session = Session::builder(env)
                .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
                .and_then(|b| Ok(b.with_intra_threads(1)?))
                .and_then(|b| Ok(b.with_inter_threads(1)?))
                .and_then(|mut b| b.commit_from_memory(&bytes))
                .map_err(|e| {
                    LoadError::invalid(&path, format!("ONNX Runtime rejected the model: {e}"))
                })?;
            check_contract(&session, &manifest, &path)?;
            sessions.push(Mutex::new(session));
        }
        Ok(Self {
            manifest,
            sessions,
            next: AtomicUsize::new(0),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Run the model on a batch; returns `[item][head] → probabilities`.
    ///
    /// Items are grouped by length before the model calls, so a long text does
    /// not pad every short one in its batch to its own length.
    pub fn predict(&self, batch: &[Encoded]) -> Result<Vec<Vec<HeadPrediction>>, TriageError> {
        if batch.len() <= 1 {
            return self.run_padded(&batch.iter().collect::<Vec<_>>());
        }
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| batch[i].ids.len());
        let mut out: Vec<Option<Vec<HeadPrediction>>> = vec![None; batch.len()];
        let mut start = 0;
        while start < order.len() {
            let shortest = batch[order[start]].ids.len();
            let limit = shortest + shortest / 4 + 16;
            let mut end = start + 1;
            while end < order.len()
                && end - start < MAX_GROUP
                && batch[order[end]].ids.len() <= limit
            {
                end += 1;
            }
            let group: Vec<&Encoded> = order[start..end].iter().map(|&i| &batch[i]).collect();
            for (&i, r) in order[start..end].iter().zip(self.run_padded(&group)?) {
                out[i] = Some(r);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every item scored"))
            .collect())
    }

    /// One model call on `batch`, padded to its longest item.
    fn run_padded(&self, batch: &[&Encoded]) -> Result<Vec<Vec<HeadPrediction>>, TriageError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let width = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0).max(1);
        let rows = batch.len();
        let mut ids = Array2::<i64>::zeros((rows, width));
        let mut mask = Array2::<i64>::zeros((rows, width));
        let mut type_ids = Array2::<i64>::zeros((rows, width));
        for (r, e) in batch.iter().enumerate() {
            for (c, &id) in e.ids.iter().enumerate() {
                ids[[r, c]] = id;
                mask[[r, c]] = 1;
            }
            for (c, &t) in e.type_ids.iter().enumerate().take(width) {
                type_ids[[r, c]] = t;
            }
        }
        let mut inputs = Vec::with_capacity(self.manifest.inputs.len());
        for spec in &self.manifest.inputs {
            let array = match spec.role {
                InputRole::Ids => &ids,
                InputRole::Mask => &mask,
                InputRole::TypeIds => &type_ids,
            };
            let tensor = TensorRef::from_array_view(array)
                .map_err(|e| TriageError::Inference(e.to_string()))?;
            inputs.push((spec.name.as_str(), tensor));
        }
        let mut session = self.acquire();
        let outputs = session
            .run(inputs)
            .map_err(|e| TriageError::Inference(e.to_string()))?;
        let mut result: Vec<Vec<HeadPrediction>> = (0..rows)
            .map(|_| Vec::with_capacity(self.manifest.heads.len()))
            .collect();
        for head in &self.manifest.heads {
            let value = outputs.get(&head.output).ok_or_else(|| {
                TriageError::Inference(format!("model produced no output `{}`", head.output))
            })?;
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| TriageError::Inference(e.to_string()))?;
            let n = head.labels.len();
            if shape.len() != 2 || shape[0] as usize != rows || shape[1] as usize != n {
                return Err(TriageError::Inference(format!(
                    "output `{}` has shape {shape:?}, expected [{rows}, {n}]",
                    head.output
                )));
            }
            for (r, item) in result.iter_mut().enumerate() {
                let mut probs = data[r * n..(r + 1) * n].to_vec();
                if head.output_kind == OutputKind::Logits {
                    softmax_in_place(&mut probs, head.temperature);
                }
                item.push(probs);
            }
        }
        Ok(result)
    }

    fn acquire(&self) -> std::sync::MutexGuard<'_, Session> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(guard) = self.sessions[(start + i) % n].try_lock() {
                return guard;
            }
        }
        self.sessions[start]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Check that the ONNX graph has the inputs and outputs the manifest names.
fn check_contract(session: &Session, manifest: &Manifest, path: &Path) -> Result<(), LoadError> {
    for spec in &manifest.inputs {
        if !session.inputs().iter().any(|i| i.name() == spec.name) {
            return Err(LoadError::invalid(
                path,
                format!(
                    "manifest input `{}` is not an input of the ONNX graph",
                    spec.name
                ),
            ));
        }
    }
    for head in &manifest.heads {
        if !session.outputs().iter().any(|o| o.name() == head.output) {
            return Err(LoadError::invalid(
                path,
                format!(
                    "head `{}` reads output `{}`, which the ONNX graph does not have",
                    head.name, head.output
                ),
            ));
        }
    }
    Ok(())
}

/// Numerically stable softmax of `logits / temperature`.
pub fn softmax_in_place(values: &mut [f32], temperature: f32) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = ((*v - max) / temperature).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}
