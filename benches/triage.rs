//! Criterion benchmarks of the scoring hot path on real corpus texts:
//! text stages, encoding, inference at batch sizes 1/32/256, and the full
//! triage (signals, routing and reply included). Run: `cargo bench --bench triage`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use triage::engine::default_engine;
use triage::model::encoder::FeatureContext;
use triage::text::normalise::NormaliseLimits;
use triage::{Complaint, Engine};

/// Short (≈25th percentile), typical (median) and long (≈95th percentile)
/// texts from the held-out split.
fn sample_texts(root: &Path) -> Vec<(&'static str, Complaint)> {
    let mut all = corpus(root);
    all.sort_by_key(|c| c.text.chars().count());
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].clone();
    vec![
        ("short", at(0.25)),
        ("typical", at(0.5)),
        ("long", at(0.95)),
    ]
}

fn corpus(root: &Path) -> Vec<Complaint> {
    triage::batch::complaints_from_jsonl(&root.join("models/heldout.jsonl"))
        .expect("models/heldout.jsonl")
}

fn cycled(root: &Path, n: usize) -> Vec<Complaint> {
    corpus(root).into_iter().cycle().take(n).collect()
}

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine: Engine = default_engine(root).expect("engine loads");
    let samples = sample_texts(root);
    let limits = NormaliseLimits::default();
    let fx = engine
        .encoder()
        .feature_extractor()
        .expect("features encoder");

    let mut g = c.benchmark_group("normalise_segment");
    for (name, complaint) in &samples {
        g.bench_with_input(BenchmarkId::from_parameter(name), complaint, |b, c| {
            b.iter(|| {
                let p = triage::text::prepare(&c.text, &limits).unwrap();
                fx.segmenter().cut(&p.masked).len()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("encode");
    for (name, complaint) in &samples {
        let p = triage::text::prepare(&complaint.text, &limits).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(name), &p, |b, p| {
            b.iter(|| {
                let ctx = FeatureContext {
                    text: &p.masked,
                    channel: complaint.channel.as_deref(),
                    amounts: &p.amounts,
                };
                engine.encoder().encode(&ctx).unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("inference");
    let encoded: Vec<_> = cycled(root, 256)
        .iter()
        .map(|c| engine.prepare_one(c).unwrap().1)
        .collect();
    for size in [1usize, 32, 256] {
        g.throughput(Throughput::Elements(size as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(size),
            &encoded[..size],
            |b, batch| b.iter(|| engine.classifier().predict(batch).unwrap()),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("full_triage");
    for (name, complaint) in &samples {
        g.bench_with_input(BenchmarkId::from_parameter(name), complaint, |b, c| {
            b.iter(|| engine.triage(c).unwrap())
        });
    }
    let batch = cycled(root, 32);
    g.throughput(Throughput::Elements(32));
    g.bench_function("batch_32", |b| b.iter(|| engine.triage_batch(&batch)));
    g.finish();
}

criterion_group! {
    name = triage_benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = benches
}
criterion_main!(triage_benches);
