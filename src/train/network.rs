//! The shipped classifier: a shared fastText-style encoder (mean of feature
//! embeddings → one ReLU layer) with one softmax head per axis, trained with
//! Adam (lazy, row-wise for the embedding table) in plain Rust.
//!
//! Small on purpose: it trains in seconds on a laptop-class CPU, serves in
//! microseconds, and its exported ONNX graph computes exactly `forward` here.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Hyper-parameters (recorded in the manifest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hyper {
    pub dim: usize,
    pub hidden: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub token_dropout: f32,
    pub hidden_dropout: f32,
    pub weight_decay: f32,
    /// Decoupled weight decay on the embedding rows a batch touches.
    pub emb_weight_decay: f32,
    /// Learning-rate multiplier for the embedding table.
    pub emb_lr_scale: f32,
    /// Class weights are (n / (classes · n_class))^power: 0 = unweighted, 1 = balanced.
    pub class_weight_power: f32,
    /// Stop after this many epochs without a better validation score.
    pub patience: usize,
    pub seed: u64,
}

impl Default for Hyper {
    fn default() -> Self {
        Self {
            dim: 96,
            hidden: 256,
            epochs: 60,
            batch: 32,
            lr: 0.002,
            token_dropout: 0.7,
            hidden_dropout: 0.5,
            weight_decay: 1e-4,
            emb_weight_decay: 0.05,
            emb_lr_scale: 1.0,
            class_weight_power: 0.5,
            patience: 6,
            seed: 20261123,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeadParams {
    pub classes: usize,
    /// `[dim + hidden][classes]`: heads read the pooled features and the hidden layer.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct Network {
    pub vocab: usize,
    pub dim: usize,
    pub hidden: usize,
    /// `[vocab][dim]`; row 0 is padding.
    pub emb: Vec<f32>,
    /// Per-feature IDF weight (fixed, from the training split); 0 for padding.
    pub idf: Vec<f32>,
    /// `[dim][hidden]`
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub heads: Vec<HeadParams>,
}

/// Intermediate values of one forward pass (kept for backpropagation).
pub struct Activations {
    /// TF-IDF weighted, L2-normalised sum of feature embeddings.
    pub pooled: Vec<f32>,
    /// The normaliser (L2 norm of the IDF weights).
    pub norm: f32,
    pub pre: Vec<f32>,
    pub hidden: Vec<f32>,
    pub logits: Vec<Vec<f32>>,
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

impl Network {
    pub fn new(idf: Vec<f32>, dim: usize, hidden: usize, classes: &[usize], seed: u64) -> Self {
        let vocab = idf.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut emb = uniform(&mut rng, vocab * dim, 0.5);
        emb[..dim].iter_mut().for_each(|v| *v = 0.0);
        let w1 = uniform(&mut rng, dim * hidden, (6.0 / (dim + hidden) as f32).sqrt());
        let heads = classes
            .iter()
            .map(|&c| HeadParams {
                classes: c,
                w: uniform(
                    &mut rng,
                    (dim + hidden) * c,
                    (6.0 / (dim + hidden + c) as f32).sqrt(),
                ),
                b: vec![0.0; c],
            })
            .collect();
        Self {
            vocab,
            dim,
            hidden,
            emb,
            idf,
            w1,
            b1: vec![0.0; hidden],
            heads,
        }
    }

    /// Forward pass without dropout: what the exported graph computes.
    pub fn forward(&self, ids: &[u32]) -> Activations {
        self.forward_with(ids, None)
    }

    /// Forward pass; `hidden_keep` is an inverted-dropout multiplier per hidden unit.
    /// `ids` must not repeat (the encoder deduplicates: binary term frequency).
    pub fn forward_with(&self, ids: &[u32], hidden_keep: Option<&[f32]>) -> Activations {
        let (d, h) = (self.dim, self.hidden);
        let mut pooled = vec![0f32; d];
        let mut sq = 0f32;
        for &id in ids {
            let w = self.idf[id as usize];
            sq += w * w;
            let row = &self.emb[id as usize * d..(id as usize + 1) * d];
            for (m, r) in pooled.iter_mut().zip(row) {
                *m += w * r;
            }
        }
        let norm = sq.sqrt().max(NORM_EPS);
        pooled.iter_mut().for_each(|m| *m /= norm);
        let mut pre = self.b1.clone();
        for (i, &m) in pooled.iter().enumerate() {
            let row = &self.w1[i * h..(i + 1) * h];
            for (p, w) in pre.iter_mut().zip(row) {
                *p += m * w;
            }
        }
        let mut hidden: Vec<f32> = pre.iter().map(|&p| p.max(0.0)).collect();
        if let Some(keep) = hidden_keep {
            hidden.iter_mut().zip(keep).for_each(|(x, k)| *x *= k);
        }
        let logits = self
            .heads
            .iter()
            .map(|head| {
                let c = head.classes;
                let mut out = head.b.clone();
                for (j, &x) in pooled.iter().chain(hidden.iter()).enumerate() {
                    if x == 0.0 {
                        continue;
                    }
                    let row = &head.w[j * c..(j + 1) * c];
                    for (o, w) in out.iter_mut().zip(row) {
                        *o += x * w;
                    }
                }
                out
            })
            .collect();
        Activations {
            pooled,
            norm,
            pre,
            hidden,
            logits,
        }
    }
}

/// Smallest normaliser, so a text with no known feature pools to zero.
pub const NORM_EPS: f32 = 1e-6;

/// One training example: feature ids and the label index per head.
#[derive(Debug, Clone)]
pub struct Example {
    pub ids: Vec<u32>,
    pub labels: Vec<usize>,
}

/// Adam moments for a flat parameter slice.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }
}

const B1: f32 = 0.9;
const B2: f32 = 0.999;
const EPS: f32 = 1e-8;

#[allow(clippy::too_many_arguments)]
fn adam_step(
    p: &mut [f32],
    g: &[f32],
    st: &mut Adam,
    range: std::ops::Range<usize>,
    lr: f32,
    wd: f32,
    t: i32,
) {
    let bc1 = 1.0 - B1.powi(t);
    let bc2 = 1.0 - B2.powi(t);
    for i in range {
        let gi = g[i];
        st.m[i] = B1 * st.m[i] + (1.0 - B1) * gi;
        st.v[i] = B2 * st.v[i] + (1.0 - B2) * gi * gi;
        let mh = st.m[i] / bc1;
        let vh = st.v[i] / bc2;
        p[i] -= lr * (mh / (vh.sqrt() + EPS) + wd * p[i]);
    }
}

/// Gradients and optimiser state for one training run.
pub struct Trainer {
    pub hyper: Hyper,
    /// Per head, per class loss weight (rarer classes weigh more).
    pub class_weights: Vec<Vec<f32>>,
    rng: ChaCha8Rng,
    step: i32,
    adam_emb: Adam,
    adam_w1: Adam,
    adam_b1: Adam,
    adam_heads: Vec<(Adam, Adam)>,
}

impl Trainer {
    pub fn new(net: &Network, hyper: Hyper, class_weights: Vec<Vec<f32>>) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(hyper.seed ^ 0x5eed);
        Self {
            adam_emb: Adam::new(net.emb.len()),
            adam_w1: Adam::new(net.w1.len()),
            adam_b1: Adam::new(net.b1.len()),
            adam_heads: net
                .heads
                .iter()
                .map(|h| (Adam::new(h.w.len()), Adam::new(h.b.len())))
                .collect(),
            hyper,
            class_weights,
            rng,
            step: 0,
        }
    }

    /// One epoch over `data` in a seeded random order; returns the mean loss.
    pub fn epoch(&mut self, net: &mut Network, data: &[Example]) -> f32 {
        let mut order: Vec<usize> = (0..data.len()).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut total = 0.0;
        for chunk in order.chunks(self.hyper.batch) {
            total += self.batch(net, chunk.iter().map(|&i| &data[i]));
        }
        total / data.len().max(1) as f32
    }

    fn batch<'a>(&mut self, net: &mut Network, batch: impl Iterator<Item = &'a Example>) -> f32 {
        let (d, h) = (net.dim, net.hidden);
        let mut g_emb_rows: Vec<(u32, Vec<f32>)> = Vec::new();
        let mut g_w1 = vec![0f32; net.w1.len()];
        let mut g_b1 = vec![0f32; h];
        let mut g_heads: Vec<(Vec<f32>, Vec<f32>)> = net
            .heads
            .iter()
            .map(|hd| (vec![0.0; hd.w.len()], vec![0.0; hd.b.len()]))
            .collect();
        let mut loss = 0.0;
        let mut count = 0usize;
        let keep_p = 1.0 - self.hyper.hidden_dropout;
        for ex in batch {
            count += 1;
            let mut ids: Vec<u32> = ex
                .ids
                .iter()
                .copied()
                .filter(|_| self.rng.random::<f32>() >= self.hyper.token_dropout)
                .collect();
            if ids.is_empty() && !ex.ids.is_empty() {
                ids.push(ex.ids[self.rng.random_range(0..ex.ids.len())]);
            }
            let keep: Vec<f32> = (0..h)
                .map(|_| {
                    if self.rng.random::<f32>() < keep_p {
                        1.0 / keep_p
                    } else {
                        0.0
                    }
                })
                .collect();
            let act = net.forward_with(&ids, Some(&keep));
            let mut g_pooled = vec![0f32; d];
            let mut g_hidden = vec![0f32; h];
            for (k, head) in net.heads.iter().enumerate() {
                let y = ex.labels[k];
                let weight = self.class_weights[k][y];
                let mut p = act.logits[k].clone();
                crate::model::onnx::softmax_in_place(&mut p, 1.0);
                loss += -weight * p[y].max(1e-12).ln();
                p[y] -= 1.0;
                p.iter_mut().for_each(|g| *g *= weight);
                let c = head.classes;
                let (gw, gb) = &mut g_heads[k];
                for (j, g) in p.iter().enumerate() {
                    gb[j] += g;
                }
                for (i, &x) in act.pooled.iter().chain(act.hidden.iter()).enumerate() {
                    let wrow = &head.w[i * c..(i + 1) * c];
                    let grow = &mut gw[i * c..(i + 1) * c];
                    let mut acc = 0.0;
                    for j in 0..c {
                        grow[j] += x * p[j];
                        acc += wrow[j] * p[j];
                    }
                    if i < d {
                        g_pooled[i] += acc;
                    } else {
                        g_hidden[i - d] += acc;
                    }
                }
            }
            // through dropout and ReLU
            let g_pre: Vec<f32> = (0..h)
                .map(|i| {
                    if act.pre[i] > 0.0 {
                        g_hidden[i] * keep[i]
                    } else {
                        0.0
                    }
                })
                .collect();
            for (i, gb) in g_b1.iter_mut().enumerate() {
                *gb += g_pre[i];
            }
            for (i, &m) in act.pooled.iter().enumerate() {
                let wrow = &net.w1[i * h..(i + 1) * h];
                let grow = &mut g_w1[i * h..(i + 1) * h];
                let mut acc = 0.0;
                for j in 0..h {
                    grow[j] += m * g_pre[j];
                    acc += wrow[j] * g_pre[j];
                }
                g_pooled[i] += acc;
            }
            // pooled = Σ w_i e_i / norm, with norm fixed per example: d e_i = w_i / norm · d pooled
            for &id in &ids {
                let scale = net.idf[id as usize] / act.norm;
                let scaled: Vec<f32> = g_pooled.iter().map(|g| g * scale).collect();
                g_emb_rows.push((id, scaled));
            }
        }
        if count == 0 {
            return 0.0;
        }
        let inv = 1.0 / count as f32;
        self.step += 1;
        let (lr, wd, t) = (self.hyper.lr, self.hyper.weight_decay, self.step);
        g_w1.iter_mut().for_each(|g| *g *= inv);
        g_b1.iter_mut().for_each(|g| *g *= inv);
        adam_step(
            &mut net.w1,
            &g_w1,
            &mut self.adam_w1,
            0..g_w1.len(),
            lr,
            wd,
            t,
        );
        adam_step(&mut net.b1, &g_b1, &mut self.adam_b1, 0..h, lr, 0.0, t);
        for (k, (gw, gb)) in g_heads.iter_mut().enumerate() {
            gw.iter_mut().for_each(|g| *g *= inv);
            gb.iter_mut().for_each(|g| *g *= inv);
            let (aw, ab) = &mut self.adam_heads[k];
            let head = &mut net.heads[k];
            adam_step(&mut head.w, gw, aw, 0..gw.len(), lr, wd, t);
            adam_step(&mut head.b, gb, ab, 0..gb.len(), lr, 0.0, t);
        }
        // Embedding rows: sum the per-example contributions per row, then a lazy Adam step on touched rows.
        g_emb_rows.sort_by_key(|(id, _)| *id);
        let mut dense = vec![0f32; net.emb.len()];
        let mut touched: Vec<u32> = Vec::new();
        for (id, g) in g_emb_rows {
            if id == 0 {
                continue;
            }
            if touched.last() != Some(&id) {
                touched.push(id);
            }
            let row = &mut dense[id as usize * d..(id as usize + 1) * d];
            row.iter_mut().zip(&g).for_each(|(r, x)| *r += x * inv);
        }
        for id in touched {
            let range = id as usize * d..(id as usize + 1) * d;
            adam_step(
                &mut net.emb,
                &dense,
                &mut self.adam_emb,
                range,
                lr * self.hyper.emb_lr_scale,
                self.hyper.emb_weight_decay,
                t,
            );
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_network() {
        let a = Network::new(vec![1.0; 50], 8, 6, &[3, 2], 7);
        let b = Network::new(vec![1.0; 50], 8, 6, &[3, 2], 7);
        assert_eq!(a.emb, b.emb);
        assert_eq!(a.heads[1].w, b.heads[1].w);
    }

    #[test]
    fn training_learns_a_separable_toy_task() {
        // ids 2..10 mean class 0, ids 10..18 class 1 (for both heads)
        let data: Vec<Example> = (0..200)
            .map(|i| {
                let y = i % 2;
                let base = 2 + 8 * y as u32;
                Example {
                    ids: vec![base + (i as u32 % 8), base + ((i as u32 + 3) % 8)],
                    labels: vec![y, y],
                }
            })
            .collect();
        let hyper = Hyper {
            dim: 8,
            hidden: 8,
            epochs: 10,
            token_dropout: 0.0,
            hidden_dropout: 0.0,
            ..Hyper::default()
        };
        let mut net = Network::new(vec![1.0; 20], 8, 8, &[2, 2], 1);
        let mut tr = Trainer::new(&net, hyper, vec![vec![1.0; 2]; 2]);
        let first = tr.epoch(&mut net, &data);
        let mut last = first;
        for _ in 0..15 {
            last = tr.epoch(&mut net, &data);
        }
        assert!(last < first * 0.2, "loss {first} → {last}");
        let correct = data.iter().filter(|e| {
            let l = &net.forward(&e.ids).logits[0];
            (l[1] > l[0]) as usize == e.labels[0]
        });
        assert_eq!(correct.count(), data.len());
    }
}
