//! The classifiers: what a model directory contains (manifest), how text
//! becomes model inputs (encoder), and how ONNX Runtime runs them (onnx).
//!
//! Nothing here knows the taxonomy: head names and label lists come from the
//! manifest, so a retrained or bank-supplied model needs no code change.

pub mod encoder;
pub mod manifest;
pub mod onnx;
pub mod runtime;

pub use encoder::{Encoded, Encoder};
pub use manifest::{EncoderKind, HeadSpec, InputRole, Manifest};
pub use onnx::{Classifier, HeadPrediction};
