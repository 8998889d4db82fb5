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

/// A different model needs only a different model directory: a BERT-style
/// `text` encoder (WordPiece tokenizer.json with [CLS]/[SEP]) and its own ONNX
/// graph load in the engine with the shipped config, and triage works.
#[test]
fn a_text_encoder_model_directory_drops_in() {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    vocab.extend(
        "信用卡被盗刷了请冻结年费太贵理财亏损催收"
            .chars()
            .map(|c| c.to_string()),
    );
    let vocab_file = dir.path().join("vocab.txt");
    std::fs::write(&vocab_file, vocab.join("\n") + "\n").unwrap();
    let model = WordPiece::from_file(vocab_file.to_str().unwrap())
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    // As a Chinese BERT does: each CJK character is its own word.
    tokenizer.with_normalizer(Some(tokenizers::normalizers::bert::BertNormalizer::new(
        true, true, None, false,
    )));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 3),
        ("[CLS]".into(), 2),
    )));
    tokenizer
        .save(dir.path().join("tokenizer.json"), false)
        .unwrap();

    let taxonomy =
        triage::train::corpus::Taxonomy::load(&root.join("config/taxonomy.toml")).unwrap();
    let classes: Vec<usize> = taxonomy.axes.iter().map(|a| a.labels.len()).collect();
    let net = Network::new(vec![1.0; vocab.len()], 8, 8, &classes, 5);
    let heads: Vec<ExportHead> = taxonomy
        .axes
        .iter()
        .map(|a| ExportHead {
            output: &a.name,
            temperature: 1.0,
        })
        .collect();
    std::fs::write(
        dir.path().join("bert-like.onnx"),
        export_onnx(&net, &heads, "bert-like"),
    )
    .unwrap();
    let manifest = serde_json::json!({
        "name": "bert-like-test", "version": "0.0.1", "onnx": "bert-like.onnx", "tokenizer": "tokenizer.json",
        "encoder": {"kind": "text", "max_tokens": 64},
        "inputs": [{"name": "input_ids", "role": "ids"}, {"name": "attention_mask", "role": "mask"}],
        "heads": taxonomy.axes.iter().map(|a| serde_json::json!({
            "name": a.name, "output": a.name, "labels": a.labels, "ordinal": a.ordinal
        })).collect::<Vec<_>>()
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();

    let engine = triage::Engine::load(&triage::EngineOptions {
        model_dir: dir.path().to_owned(),
        config: root.join("config/triage.toml"),
        sessions: 1,
    })
    .expect("a text-encoder model directory loads");
    let complaint = triage::Complaint::new("信用卡被盗刷了，请冻结");
    let (_, encoded) = engine.prepare_one(&complaint).unwrap();
    assert_eq!(
        encoded.ids.first(),
        Some(&2),
        "[CLS] first: the WordPiece tokenizer encoded the text"
    );
    assert_eq!(encoded.ids.last(), Some(&3), "[SEP] last");
    assert!(encoded.ids.len() > 8);
    let t = engine.triage(&complaint).unwrap();
    assert_eq!(t.model.name, "bert-like-test");
    for axis in &taxonomy.axes {
        assert!(axis.labels.contains(&t.labels[&axis.name].value));
    }
}
