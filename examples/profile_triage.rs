//! Profiling driver: triage the held-out texts in a loop, one at a time or in
//! batches. `perf record -g target/release/examples/profile_triage [batch]`.

use std::path::Path;

use triage::engine::default_engine;

fn main() {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = default_engine(root).expect("engine");
    let complaints = triage::batch::complaints_from_jsonl(&root.join("models/heldout.jsonl"))
        .expect("held-out split");
    let start = std::time::Instant::now();
    let mut n = 0usize;
    for _ in 0..10 {
        for chunk in complaints.chunks(batch) {
            n += engine.triage_batch(chunk).len();
        }
    }
    let el = start.elapsed();
    eprintln!(
        "{n} complaints in {el:?}: {:.1} µs each",
        el.as_secs_f64() * 1e6 / n as f64
    );
}
