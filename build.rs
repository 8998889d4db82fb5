//! Makes sure ONNX Runtime is on disk for `load-dynamic`: unless ORT_DYLIB_PATH
//! is set, fetch libonnxruntime.so from the PyPI wheel into
//! `target/onnxruntime/` (once) and bake that path into the binary. A failed
//! fetch is a warning, not a build failure: the engine then reports at start-up
//! how to provide the library.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/fetch_onnxruntime.py");
    println!("cargo:rerun-if-env-changed=ORT_DYLIB_PATH");
    println!("cargo:rerun-if-env-changed=TRIAGE_SKIP_ORT_FETCH");
    if std::env::var_os("ORT_DYLIB_PATH").is_some()
        || std::env::var_os("TRIAGE_SKIP_ORT_FETCH").is_some()
    {
        return;
    }
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"));
    let target_dir = if target_dir.is_absolute() {
        target_dir
    } else {
        manifest_dir.join(target_dir)
    };
    let dest = target_dir.join("onnxruntime");
    let lib = dest.join("libonnxruntime.so");
    if !lib.is_file() {
        let script = manifest_dir.join("scripts/fetch_onnxruntime.py");
        let status = Command::new("python3")
            .arg(&script)
            .arg("--dest")
            .arg(&dest)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => println!(
                "cargo:warning=fetching ONNX Runtime failed ({s}); set ORT_DYLIB_PATH or run {}",
                script.display()
            ),
            Err(e) => println!(
                "cargo:warning=cannot run python3 to fetch ONNX Runtime ({e}); set ORT_DYLIB_PATH"
            ),
        }
    }
    println!("cargo:rustc-env=TRIAGE_BUILTIN_ORT_DYLIB={}", lib.display());
}
