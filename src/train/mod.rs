//! `triage train`: labelled complaints in, a model directory out (ONNX graph,
//! tokenizer.json vocabulary, finance dictionary, manifest, held-out split).
//!
//! Training runs in Rust with the engine's own text preparation and feature
//! extraction, so what the model learns from is exactly what it will see.

pub mod corpus;
pub mod export;
pub mod network;
pub mod onnx_proto;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::Tokenizer;

use crate::eval::metrics::AxisMetrics;
use crate::model::encoder::{FeatureContext, FeatureExtractor};
use crate::model::manifest::{
    EncoderKind, EncoderSpec, HeadSpec, InputRole, InputSpec, Manifest, OutputKind,
};
use crate::model::onnx::softmax_in_place;
use crate::text::normalise::NormaliseLimits;
use crate::text::segment::Segmenter;
use corpus::{Record, Split, Taxonomy};
use network::{Example, Hyper, Network, Trainer};

pub const PAD: &str = "[PAD]";
pub const UNK: &str = "[UNK]";

/// Everything `triage train` needs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub out: PathBuf,
    pub taxonomy: PathBuf,
    pub user_dict: PathBuf,
    pub hyper: Hyper,
    pub min_count: usize,
    pub char_ngrams: Vec<usize>,
    pub max_tokens: usize,
    pub val_fraction: f64,
    pub test_fraction: f64,
    /// Axis to stratify the split on.
    pub stratify: String,
    /// Recall the top level of each ordinal axis should reach on validation
    /// (a decision threshold is fitted for it); None disables thresholds.
    pub top_level_recall: Option<f64>,
    pub quiet: bool,
}

impl TrainOptions {
    pub fn with_defaults(data: PathBuf, out: PathBuf) -> Self {
        Self {
            data,
            out,
            taxonomy: PathBuf::from("config/taxonomy.toml"),
            user_dict: PathBuf::from("config/finance_dict.txt"),
            hyper: Hyper::default(),
            min_count: 2,
            char_ngrams: vec![1, 2, 3],
            max_tokens: 1024,
            val_fraction: 0.10,
            test_fraction: 0.15,
            stratify: "category".into(),
            top_level_recall: Some(0.90),
            quiet: false,
        }
    }
}

/// What training produced, also stored in the manifest's `training` field.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub examples: usize,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
    pub vocab: usize,
    pub best_epoch: usize,
    pub data_hash: String,
    pub hyper: Hyper,
    pub temperatures: Vec<f32>,
    /// Model-only metrics (no rule signals) on the held-out test split.
    pub test_metrics: Vec<AxisMetrics>,
    /// ECE before calibration on the test split, per head.
    pub test_ece_uncalibrated: Vec<f64>,
}

/// Prepared features of one record.
struct Featurised {
    features: Vec<String>,
}

fn featurise(fx: &FeatureExtractor, records: &[Record]) -> anyhow::Result<Vec<Featurised>> {
    let limits = NormaliseLimits {
        max_chars: usize::MAX / 16,
    };
    records
        .iter()
        .map(|r| {
            let prepared = crate::text::prepare(&r.text, &limits)
                .with_context(|| format!("record {}", r.id))?;
            let ctx = FeatureContext {
                text: &prepared.masked,
                channel: r.channel.as_deref(),
                amounts: &prepared.amounts,
            };
            Ok(Featurised {
                features: fx.features(&ctx),
            })
        })
        .collect()
}

/// Train, calibrate, evaluate and write the model directory.
pub fn train(opts: &TrainOptions) -> anyhow::Result<TrainReport> {
    let log = |msg: String| {
        if !opts.quiet {
            eprintln!("{msg}");
        }
    };
    let taxonomy = Taxonomy::load(&opts.taxonomy)?;
    let (records, data_hash) = corpus::load_corpus(&opts.data, &taxonomy)?;
    let stratify = taxonomy
        .axes
        .iter()
        .position(|a| a.name == opts.stratify)
        .with_context(|| {
            format!(
                "cannot stratify on `{}`: not an axis of the taxonomy",
                opts.stratify
            )
        })?;
    let splits = corpus::split(
        &records,
        stratify,
        opts.hyper.seed,
        opts.val_fraction,
        opts.test_fraction,
    );
    let count = |s: Split| splits.iter().filter(|x| **x == s).count();
    log(format!(
        "corpus: {} examples (train {}, validation {}, test {})",
        records.len(),
        count(Split::Train),
        count(Split::Validation),
        count(Split::Test)
    ));

    let segmenter = Segmenter::load(Some(&opts.user_dict), true)?;
    let fx = FeatureExtractor::new(segmenter, opts.char_ngrams.clone(), opts.max_tokens);
    let feats = featurise(&fx, &records)?;

    // Vocabulary from the training split only.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (f, s) in feats.iter().zip(&splits) {
        if *s == Split::Train {
            for feature in &f.features {
                *counts.entry(feature.as_str()).or_default() += 1;
            }
        }
    }
    let mut kept: Vec<(&str, usize)> = counts
        .into_iter()
        .filter(|(_, c)| *c >= opts.min_count)
        .collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut vocab: Vec<String> = vec![PAD.into(), UNK.into()];
    vocab.extend(kept.iter().map(|(f, _)| f.to_string()));
    let index: HashMap<&str, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i as u32))
        .collect();
    log(format!(
        "vocabulary: {} features (min count {})",
        vocab.len(),
        opts.min_count
    ));

    // Binary term frequency, as the served encoder does with `dedupe`.
    let examples: Vec<Example> = feats
        .iter()
        .zip(&records)
        .map(|(f, r)| {
            let mut ids: Vec<u32> = f
                .features
                .iter()
                .filter_map(|x| index.get(x.as_str()).copied())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            Example {
                ids,
                labels: r.labels.clone(),
            }
        })
        .collect();
    // Smoothed IDF over the training split (as scikit-learn's TfidfVectorizer).
    let mut df = vec![0usize; vocab.len()];
    for (e, s) in examples.iter().zip(&splits) {
        if *s == Split::Train {
            for &id in &e.ids {
                df[id as usize] += 1;
            }
        }
    }
    let n_train = count(Split::Train) as f32;
    let idf: Vec<f32> = df
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i < 2 {
                0.0
            } else {
                ((1.0 + n_train) / (1.0 + d as f32)).ln() + 1.0
            }
        })
        .collect();
    let pick = |s: Split| -> Vec<Example> {
        examples
            .iter()
            .zip(&splits)
            .filter(|(_, x)| **x == s)
            .map(|(e, _)| e.clone())
            .collect()
    };
    let (train_set, val_set, test_set) = (
        pick(Split::Train),
        pick(Split::Validation),
        pick(Split::Test),
    );

    let classes: Vec<usize> = taxonomy.axes.iter().map(|a| a.labels.len()).collect();
    let class_weights = class_weights(&train_set, &classes, opts.hyper.class_weight_power);
    let hyper = opts.hyper.clone();
    let mut net = Network::new(idf, hyper.dim, hyper.hidden, &classes, hyper.seed);
    let mut trainer = Trainer::new(&net, hyper.clone(), class_weights);
    let mut best = (f64::NEG_INFINITY, 0usize, net.clone());
    for epoch in 1..=hyper.epochs {
        let loss = trainer.epoch(&mut net, &train_set);
        let score = mean_macro_f1(&net, &val_set, &taxonomy);
        log(format!(
            "epoch {epoch:>2}: loss {loss:.4}, validation mean macro-F1 {score:.4}"
        ));
        if score > best.0 {
            best = (score, epoch, net.clone());
        } else if epoch - best.1 >= hyper.patience {
            break;
        }
    }
    let (_, best_epoch, net) = best;

    let temperatures: Vec<f32> = (0..classes.len())
        .map(|k| fit_temperature(&net, &val_set, k))
        .collect();
    log(format!("temperatures: {temperatures:?}"));
    let thresholds: Vec<BTreeMap<String, f32>> = taxonomy
        .axes
        .iter()
        .enumerate()
        .map(|(k, axis)| match (axis.ordinal, opts.top_level_recall) {
            (true, Some(target)) => {
                let top = axis.labels.len() - 1;
                fit_threshold(&net, &val_set, k, top, temperatures[k], target)
                    .map(|t| BTreeMap::from([(axis.labels[top].clone(), t)]))
                    .unwrap_or_default()
            }
            _ => BTreeMap::new(),
        })
        .collect();
    log(format!("decision thresholds: {thresholds:?}"));
    let test_metrics = evaluate_with(&net, &test_set, &taxonomy, &temperatures, &thresholds);
    let test_ece_uncalibrated = evaluate(&net, &test_set, &taxonomy, &vec![1.0; classes.len()])
        .iter()
        .map(|m| m.ece.unwrap_or(0.0))
        .collect();
    for m in &test_metrics {
        log(format!(
            "test {:<10} accuracy {:.3} macro-F1 {:.3} ECE {:.3}",
            m.axis,
            m.accuracy,
            m.macro_f1,
            m.ece.unwrap_or(0.0)
        ));
    }

    let report = TrainReport {
        examples: records.len(),
        train: train_set.len(),
        validation: val_set.len(),
        test: test_set.len(),
        vocab: vocab.len(),
        best_epoch,
        data_hash,
        hyper,
        temperatures: temperatures.clone(),
        test_metrics,
        test_ece_uncalibrated,
    };
    write_model_dir(
        opts,
        &taxonomy,
        &net,
        &vocab,
        &temperatures,
        &thresholds,
        &report,
        &records,
        &splits,
    )?;
    log(format!("wrote {}", opts.out.display()));
    Ok(report)
}

/// Inverse class frequency to a power, so rare labels (critical, immediate) weigh more.
fn class_weights(train: &[Example], classes: &[usize], power: f32) -> Vec<Vec<f32>> {
    classes
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let mut n = vec![0usize; c];
            for e in train {
                n[e.labels[k]] += 1;
            }
            let total = train.len().max(1) as f32;
            n.iter()
                .map(|&x| {
                    if x == 0 {
                        1.0
                    } else {
                        (total / (c as f32 * x as f32)).powf(power).clamp(0.2, 5.0)
                    }
                })
                .collect()
        })
        .collect()
}

fn probabilities(net: &Network, e: &Example, temperatures: &[f32]) -> Vec<Vec<f32>> {
    let mut logits = net.forward(&e.ids).logits;
    for (l, t) in logits.iter_mut().zip(temperatures) {
        softmax_in_place(l, *t);
    }
    logits
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold(0, |best, (i, v)| if *v > p[best] { i } else { best })
}

fn evaluate(
    net: &Network,
    data: &[Example],
    taxonomy: &Taxonomy,
    temperatures: &[f32],
) -> Vec<AxisMetrics> {
    evaluate_with(
        net,
        data,
        taxonomy,
        temperatures,
        &vec![BTreeMap::new(); taxonomy.axes.len()],
    )
}

/// Metrics with decision thresholds applied as the engine applies them.
fn evaluate_with(
    net: &Network,
    data: &[Example],
    taxonomy: &Taxonomy,
    temperatures: &[f32],
    thresholds: &[BTreeMap<String, f32>],
) -> Vec<AxisMetrics> {
    let probs: Vec<Vec<Vec<f32>>> = data
        .iter()
        .map(|e| probabilities(net, e, temperatures))
        .collect();
    taxonomy
        .axes
        .iter()
        .enumerate()
        .map(|(k, axis)| {
            let head = head_spec(axis, temperatures[k], thresholds[k].clone());
            let pairs: Vec<(usize, usize)> = data
                .iter()
                .zip(&probs)
                .map(|(e, p)| (e.labels[k], head.decide(&p[k]).0))
                .collect();
            let conf: Vec<f32> = probs.iter().map(|p| p[k][argmax(&p[k])]).collect();
            AxisMetrics::compute(&axis.name, &axis.labels, &pairs, Some(&conf), axis.ordinal)
        })
        .collect()
}

fn mean_macro_f1(net: &Network, data: &[Example], taxonomy: &Taxonomy) -> f64 {
    let m = evaluate(net, data, taxonomy, &vec![1.0; taxonomy.axes.len()]);
    m.iter().map(|a| a.macro_f1).sum::<f64>() / m.len() as f64
}

fn head_spec(
    axis: &corpus::AxisDef,
    temperature: f32,
    thresholds: BTreeMap<String, f32>,
) -> HeadSpec {
    HeadSpec {
        name: axis.name.clone(),
        output: axis.name.clone(),
        labels: axis.labels.clone(),
        ordinal: axis.ordinal,
        output_kind: OutputKind::Probabilities,
        temperature,
        thresholds,
    }
}

/// The highest threshold on P(label) at which validation recall of `label`
/// reaches `target`; None when argmax alone already reaches it.
fn fit_threshold(
    net: &Network,
    val: &[Example],
    head: usize,
    label: usize,
    temperature: f32,
    target: f64,
) -> Option<f32> {
    let positives: Vec<(f32, bool)> = val
        .iter()
        .filter(|e| e.labels[head] == label)
        .map(|e| {
            let mut p = net.forward(&e.ids).logits[head].clone();
            softmax_in_place(&mut p, temperature);
            (p[label], argmax(&p) == label)
        })
        .collect();
    if positives.is_empty() {
        return None;
    }
    let recall = |t: f32| {
        positives.iter().filter(|(p, am)| *am || *p >= t).count() as f64 / positives.len() as f64
    };
    if recall(1.01) >= target {
        return None;
    }
    let mut t = 0.95f32;
    while t > 0.02 && recall(t) < target {
        t -= 0.01;
    }
    Some((t * 100.0).round() / 100.0)
}

/// Temperature minimising validation negative log-likelihood (grid search).
fn fit_temperature(net: &Network, val: &[Example], head: usize) -> f32 {
    if val.is_empty() {
        return 1.0;
    }
    let logits: Vec<Vec<f32>> = val
        .iter()
        .map(|e| net.forward(&e.ids).logits[head].clone())
        .collect();
    let nll = |t: f32| -> f64 {
        logits
            .iter()
            .zip(val)
            .map(|(l, e)| {
                let mut p = l.clone();
                softmax_in_place(&mut p, t);
                -(p[e.labels[head]].max(1e-12) as f64).ln()
            })
            .sum()
    };
    let mut best = (f64::INFINITY, 1.0f32);
    let mut t = 0.25f32;
    while t <= 5.0 {
        let v = nll(t);
        if v < best.0 {
            best = (v, t);
        }
        t += 0.05;
    }
    (best.1 * 100.0).round() / 100.0
}

#[allow(clippy::too_many_arguments)]
fn write_model_dir(
    opts: &TrainOptions,
    taxonomy: &Taxonomy,
    net: &Network,
    vocab: &[String],
    temperatures: &[f32],
    thresholds: &[BTreeMap<String, f32>],
    report: &TrainReport,
    records: &[Record],
    splits: &[Split],
) -> anyhow::Result<()> {
    let out = &opts.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let heads: Vec<export::ExportHead> = taxonomy
        .axes
        .iter()
        .zip(temperatures)
        .map(|(a, t)| export::ExportHead {
            output: &a.name,
            temperature: *t,
        })
        .collect();
    let name = "complaint-triage-fasttext";
    std::fs::write(
        out.join("model.onnx"),
        export::export_onnx(net, &heads, name),
    )?;

    let vocab_map: HashMap<String, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, f)| (f.clone(), i as u32))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab_map.into_iter().collect())
        .unk_token(UNK.into())
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the vocabulary: {e}"))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
    tokenizer
        .save(out.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("cannot write tokenizer.json: {e}"))?;

    std::fs::copy(&opts.user_dict, out.join("finance_dict.txt"))
        .with_context(|| format!("cannot copy {}", opts.user_dict.display()))?;

    // The splits, so `triage eval` can score exactly the data the model never saw.
    let mut heldout = std::fs::File::create(out.join("heldout.jsonl"))?;
    let mut validation = std::fs::File::create(out.join("validation.jsonl"))?;
    for (r, s) in records.iter().zip(splits) {
        match s {
            Split::Test => writeln!(heldout, "{}", r.raw)?,
            Split::Validation => writeln!(validation, "{}", r.raw)?,
            Split::Train => {}
        }
    }

    let manifest = Manifest {
        name: name.into(),
        version: format!("1.0.0+{}", &report.data_hash[..12]),
        onnx: "model.onnx".into(),
        tokenizer: "tokenizer.json".into(),
        encoder: EncoderSpec {
            kind: EncoderKind::Features,
            max_tokens: opts.max_tokens,
            user_dict: Some("finance_dict.txt".into()),
            hmm: true,
            char_ngrams: opts.char_ngrams.clone(),
            dedupe: true,
        },
        inputs: vec![
            InputSpec {
                name: export::INPUT_IDS.into(),
                role: InputRole::Ids,
            },
            InputSpec {
                name: export::ATTENTION_MASK.into(),
                role: InputRole::Mask,
            },
        ],
        heads: taxonomy
            .axes
            .iter()
            .zip(temperatures)
            .zip(thresholds)
            .map(|((a, t), th)| head_spec(a, *t, th.clone()))
            .collect(),
        training: serde_json::to_value(report)?,
    };
    std::fs::write(
        out.join(crate::model::manifest::MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    Ok(())
}
