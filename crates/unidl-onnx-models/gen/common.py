"""Helpers shared by the export scripts (no framework imports here).

Each export script writes, for every model it exports, `onnx/<name>.onnx` and
`onnx/<name>.json`: the inputs, the exporting framework's own logits (the
reference the Rust test matches within 1e-4), the ONNX operators the exporter
emitted, and the versions the script ran with.
"""

import collections
import json
import os
import platform

HERE = os.path.dirname(os.path.abspath(__file__))
ONNX_DIR = os.path.join(HERE, "..", "onnx")
INTEROP_FIXTURES = os.path.join(HERE, "..", "..", "unidl-interop", "tests", "fixtures")


def interop_io(framework):
    """The reference model's recorded inputs and logits (unidl-interop fixtures)."""
    with open(os.path.join(INTEROP_FIXTURES, framework, "io.json")) as f:
        return json.load(f)


def op_counts(path):
    """Operator types in an ONNX file, with their counts (needs `onnx`)."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(path)
    counts = collections.Counter(n.op_type for n in model.graph.node)
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    return {"ops": dict(sorted(counts.items())), "opsets": opsets}


def onnx_path(name, refused=False):
    """onnx/<name>.onnx, or onnx/refused/<name>.onnx for a graph burn-onnx refuses."""
    folder = os.path.join(ONNX_DIR, "refused") if refused else ONNX_DIR
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name + ".onnx")


def ort_constant_fold(src, dst):
    """onnxruntime's basic (standard-ops-only) graph optimisation: constant
    folding, so shape arithmetic on a static-shape graph becomes constants."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = dst
    ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def write_record(name, framework, model, versions, inputs, logits, exporter, notes="",
                 refused=False):
    """Writes onnx/[refused/]<name>.json next to the .onnx file.

    inputs: dict name -> numpy array (float32 images `x`, int64/int32 ids `t`);
    logits: numpy array of the framework's output.
    """
    path = onnx_path(name, refused)
    record = {
        "name": name,
        "framework": framework,
        "model": model,
        "exporter": exporter,
        "notes": notes,
        "python": platform.python_version(),
        **versions,
        **(op_counts(path) or {}),
        "inputs": {
            k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": v.flatten().tolist()}
            for k, v in inputs.items()
        },
        "logits_shape": list(logits.shape),
        "logits": [float(v) for v in logits.flatten()],
    }
    try:  # cross-check with onnxruntime where the venv has it
        import numpy as np
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feed = {}
        for i in sess.get_inputs():
            v = inputs[i.name]
            want = {"tensor(int32)": np.int32, "tensor(int64)": np.int64,
                    "tensor(float)": np.float32}[i.type]
            feed[i.name] = v.astype(want)
        out = sess.run(None, feed)[0]
        record["onnxruntime"] = ort.__version__
        record["onnxruntime_max_abs_diff"] = float(np.abs(out - logits).max())
    except ImportError:
        pass
    with open(path[: -len(".onnx")] + ".json", "w") as f:
        json.dump(record, f, indent=1)
    print(name, {k: record.get(k) for k in ("ops", "onnxruntime_max_abs_diff")})
    return record
