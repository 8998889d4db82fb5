//! Evaluation: metrics shared with the trainer, and the `triage eval` report
//! that scores the whole engine (model plus rule signals) on labelled data.

pub mod metrics;
