//! The exported ONNX graph computes what the trainer computes, and training is
//! deterministic for a seed.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use triage::model::{Classifier, Encoded, Manifest};
use triage::train::export::{export_onnx, ExportHead};
use triage::train::network::Network;

fn manifest_for(net: &Network, temps: &[f32]) -> Manifest {
    let heads: Vec<serde_json::Value> = net
        .heads
        .iter()
        .enumerate()
        .map(|(k, h)| {
            serde_json::json!({
                "name": format!("h{k}"), "output": format!("h{k}"), "temperature": temps[k],
                "labels": (0..h.classes).map(|c| format!("c{c}")).collect::<Vec<_>>()
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "name": "parity", "version": "0", "onnx": "model.onnx", "tokenizer": "tokenizer.json",
        "encoder": {"kind": "features", "max_tokens": 64},
        "inputs": [{"name": "input_ids", "role": "ids"}, {"name": "attention_mask", "role": "mask"}],
        "heads": heads
    }))
    .unwrap()
}

#[test]
fn onnx_outputs_match_the_trainer_forward_pass() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let vocab = 300;
    let idf: Vec<f32> = (0..vocab)
        .map(|i| {
            if i < 2 {
                0.0
            } else {
                rng.random_range(1.0..6.0)
            }
        })
        .collect();
    let mut net = Network::new(idf, 16, 12, &[4, 3, 5], 11);
    // make the weights non-trivial, as after training
    for w in net.w1.iter_mut().chain(net.b1.iter_mut()) {
        *w += rng.random_range(-0.5..0.5);
    }
    for h in net.heads.iter_mut() {
        h.b.iter_mut()
            .for_each(|b| *b = rng.random_range(-1.0..1.0));
    }
    let temps = [1.0, 2.5, 0.7];
    let heads: Vec<ExportHead> = ["h0", "h1", "h2"]
        .iter()
        .zip(temps)
        .map(|(o, t)| ExportHead {
            output: o,
            temperature: t,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("model.onnx"),
        export_onnx(&net, &heads, "parity"),
    )
    .unwrap();
    let manifest = Arc::new(manifest_for(&net, &temps));
    let classifier = Classifier::load(dir.path(), manifest, 1).unwrap();

    // a batch of different lengths (so padding is exercised), including an empty text
    let batch: Vec<Vec<u32>> = vec![
        vec![5, 17, 42, 299],
        vec![2],
        vec![],
        (2..60).collect(),
        vec![100, 101, 102, 150, 250, 7],
    ];
    let encoded: Vec<Encoded> = batch
        .iter()
        .map(|ids| Encoded {
            ids: ids.iter().map(|&i| i as i64).collect(),
            type_ids: vec![0; ids.len()],
        })
        .collect();
    let onnx = classifier.predict(&encoded).unwrap();
    for (ids, got) in batch.iter().zip(&onnx) {
        let mut logits = net.forward(ids).logits;
        for (k, l) in logits.iter_mut().enumerate() {
            triage::model::onnx::softmax_in_place(l, temps[k]);
            for (a, b) in l.iter().zip(&got[k]) {
                assert!((a - b).abs() < 1e-4, "head {k}: trainer {a} vs onnx {b}");
            }
        }
    }
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // a small but real corpus: the first 40 lines of each seed file
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for entry in std::fs::read_dir(root.join("training-data")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("part-")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            let head: Vec<&str> = text.lines().take(40).collect();
            std::fs::write(data.join(path.file_name().unwrap()), head.join("\n")).unwrap();
        }
    }
    let train = |out: &str| {
        let mut opts =
            triage::train::TrainOptions::with_defaults(data.clone(), dir.path().join(out));
        opts.taxonomy = root.join("config/taxonomy.toml");
        opts.user_dict = root.join("config/finance_dict.txt");
        opts.hyper.epochs = 3;
        opts.quiet = true;
        triage::train::train(&opts).unwrap();
        std::fs::read(dir.path().join(out).join("model.onnx")).unwrap()
    };
    let a = train("a");
    let b = train("b");
    assert!(a == b, "same seed must give byte-identical models");
    // and the result loads in the engine
    let manifest = Manifest::load(&dir.path().join("a")).unwrap();
    assert_eq!(manifest.heads.len(), 5);
    assert!(manifest.heads.iter().all(|h| h.temperature > 0.0));
    assert_eq!(
        manifest.head("severity").unwrap().labels,
        ["low", "medium", "high", "critical"]
    );
}
