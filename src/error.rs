//! Errors the engine reports to its callers. Each message says what went wrong
//! and what to do about it, because the caller is often an operator reading a
//! batch error record or an HTTP client reading a 4xx body.

use std::path::PathBuf;

/// A problem with one complaint: the caller can fix the input and retry.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error(
        "the complaint text is empty (or only whitespace): send the customer's words in `text`"
    )]
    EmptyText,
    #[error("the complaint text has {chars} characters, over the limit of {max}: split it or raise `limits.max_chars` in the config")]
    TextTooLong { chars: usize, max: usize },
    #[error("unknown channel `{channel}`: use one of {known} (or add it under [channels] in the config)")]
    UnknownChannel { channel: String, known: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

impl TriageError {
    /// A stable machine-readable code for wire formats.
    pub fn code(&self) -> &'static str {
        match self {
            TriageError::EmptyText => "empty_text",
            TriageError::TextTooLong { .. } => "text_too_long",
            TriageError::UnknownChannel { .. } => "unknown_channel",
            TriageError::Inference(_) => "inference_failed",
        }
    }
}

/// A problem loading the engine: models, tokenizer, runtime or configuration.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {cause}. Check the path (models default to ./models, config to ./config/triage.toml)")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "ONNX Runtime library not found (looked in: {searched}). Build the project once with network access to PyPI \
         (build.rs fetches it), run `python3 scripts/fetch_onnxruntime.py`, or set ORT_DYLIB_PATH to a libonnxruntime.so"
    )]
    RuntimeMissing { searched: String },
    #[error("ONNX Runtime failed: {0}")]
    Runtime(String),
}

impl LoadError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LoadError::Io {
            path: path.into(),
            cause: source,
        }
    }
    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        LoadError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
