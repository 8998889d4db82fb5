//! Finding and loading the ONNX Runtime shared library.
//!
//! ort is built with `load-dynamic`, because this product must run on
//! machines that can reach package registries but not ort's binary mirror.
//! `build.rs` fetches `libonnxruntime.so` from the PyPI `onnxruntime` wheel and
//! records where it put it; `ORT_DYLIB_PATH` overrides that.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::LoadError;

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Places searched for the runtime library, most specific first.
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        // An explicit setting is the only candidate: silently falling back
        // would hide a typo in a deployment.
        paths.push(PathBuf::from(p));
        return paths;
    }
    if let Some(p) = option_env!("TRIAGE_BUILTIN_ORT_DYLIB") {
        paths.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            paths.push(dir.join("libonnxruntime.so"));
            paths.push(dir.join("onnxruntime").join("libonnxruntime.so"));
        }
    }
    paths
}

/// The process-wide ONNX Runtime environment, loaded on first use.
pub fn environment() -> Result<&'static Environment, LoadError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let paths = candidate_paths();
        let Some(path) = paths.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "missing:{}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let builder =
            ort::init_from(path).map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        builder
            .with_name("triage")
            .build()
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(env) => Ok(env),
        Err(msg) => match msg.strip_prefix("missing:") {
            Some(searched) => Err(LoadError::RuntimeMissing {
                searched: searched.to_owned(),
            }),
            None => Err(LoadError::Runtime(msg.clone())),
        },
    }
}
