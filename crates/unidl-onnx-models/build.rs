//! Build-time ONNX import (burn-onnx 0.22.0 `ModelGen`).
//!
//! Every graph in `IMPORTED` (`onnx/<stem>.onnx`) becomes Rust code and a
//! Burnpack weights file, `$OUT_DIR/model/<stem>.rs` and `<stem>.bpk`; a graph
//! that fails to import fails the build with burn-onnx's message.
//!
//! Every graph in `REFUSED` (`onnx/refused/<stem>.onnx`) is one that
//! burn-onnx 0.22.0 is known not to import: it is tried anyway and the outcome
//! is written to `$OUT_DIR/refused/<stem>.txt` (burn-onnx's error message, or
//! `IMPORTED` when it now works), which `src/lib.rs` embeds and
//! `tests/import.rs` checks against the operator recorded in
//! `docs/INTEROP.md`.

use std::panic;

use burn_onnx::ModelGen;

/// Graphs turned into Burn modules (stems of `onnx/<stem>.onnx`).
const IMPORTED: &[&str] = &[
    "torch_ref",
    "torch_cnn",
    "keras_ref_folded",
    "keras_cnn",
    "paddle_ref",
    "paddle_cnn",
    "mindspore_ref",
    "mindspore_cnn",
];

/// Graphs burn-onnx 0.22.0 refuses (stems of `onnx/refused/<stem>.onnx`).
const REFUSED: &[&str] = &["torch_ref_ts", "keras_ref"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for stem in IMPORTED {
        let input = format!("onnx/{stem}.onnx");
        println!("cargo:rerun-if-changed={input}");
        ModelGen::new()
            .input(&input)
            .out_dir("model/")
            .run_from_script();
    }

    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let refused_dir = std::path::Path::new(&out_dir).join("refused");
    std::fs::create_dir_all(&refused_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", refused_dir.display()));
    // burn-onnx reports an unsupported graph by panicking; keep those panics
    // quiet and record their messages.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let outcomes: Vec<(String, String)> = REFUSED
        .iter()
        .map(|stem| {
            let input = format!("onnx/refused/{stem}.onnx");
            println!("cargo:rerun-if-changed={input}");
            let outcome = panic::catch_unwind(|| {
                ModelGen::new()
                    .input(&input)
                    .out_dir("refused/")
                    .run_from_script();
            });
            let text = match outcome {
                Ok(()) => "IMPORTED".to_string(),
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "burn-onnx panicked without a message".to_string()),
            };
            (stem.to_string(), text)
        })
        .collect();
    panic::set_hook(default_hook);
    for (stem, text) in outcomes {
        let path = refused_dir.join(format!("{stem}.txt"));
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
