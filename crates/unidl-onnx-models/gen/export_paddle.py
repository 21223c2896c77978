"""PaddlePaddle -> ONNX for crates/unidl-onnx-models (issue 5).

Run (own venv: python3.11 -m venv /var/cache/unidl/interop-venvs/paddle-onnx;
pip install paddlepaddle==3.3.1 paddle2onnx onnx onnxruntime):
    /var/cache/unidl/interop-venvs/paddle-onnx/bin/python crates/unidl-onnx-models/gen/export_paddle.py

Writes onnx/paddle_ref.onnx + .json: the interop reference model
(unidl-interop/tests/fixtures/gen/gen_paddle.py, weights from
fixtures/paddle/ref.pdparams) exported with paddle.onnx.export (paddle2onnx,
opset 17, dynamic batch), and onnx/paddle_cnn.onnx + .json: the reduced model
(conv + BatchNorm + ReLU + max-pool + global average + linear) with seeded
random weights.
"""

import os
import sys
import tempfile

import numpy as np
import paddle
import paddle2onnx
from paddle import nn
from paddle.static import InputSpec

import common

sys.path.insert(0, os.path.join(common.INTEROP_FIXTURES, "gen"))
from gen_paddle import RefModel  # noqa: E402


class CnnModel(nn.Layer):
    """The reference model's image branch with its own head: logits [B, 5]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2D(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = nn.functional.relu(self.bn(self.conv(x)))
        y = nn.functional.max_pool2d(y, 2, 2)
        return self.fc(y.mean(axis=[2, 3]))


def export(layer, specs, name):
    """paddle.onnx.export writes <prefix>.onnx; move it under onnx/."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, name)
        paddle.onnx.export(layer, prefix, input_spec=specs, opset_version=17)
        os.replace(prefix + ".onnx", os.path.join(common.ONNX_DIR, name + ".onnx"))


def main():
    versions = {"paddlepaddle": paddle.__version__, "paddle2onnx": paddle2onnx.__version__,
                "numpy": np.__version__}
    exporter = f"paddle.onnx.export (paddle2onnx {paddle2onnx.__version__})"
    io = common.interop_io("paddle")
    x = np.array(io["x"], dtype=np.float32).reshape(io["x_shape"])
    t = np.array(io["t"], dtype=np.int64).reshape(io["t_shape"])
    x_spec = InputSpec([None, 3, 16, 16], "float32", name="x")

    m = RefModel()
    m.set_state_dict(paddle.load(os.path.join(common.INTEROP_FIXTURES, "paddle", "ref.pdparams")))
    m.eval()
    with paddle.no_grad():
        logits = m(paddle.to_tensor(x), paddle.to_tensor(t)).numpy()
    assert np.abs(logits - np.array(io["logits"]).reshape(logits.shape)).max() < 1e-5
    export(m, [x_spec, InputSpec([None, 6], "int64", name="t")], "paddle_ref")
    common.write_record("paddle_ref", "paddle", "reference", versions,
                        {"x": x, "t": t}, logits, exporter)

    paddle.seed(17)
    rng = np.random.default_rng(17)
    c = CnnModel()
    sd = c.state_dict()
    for key, lo, hi in [("bn._mean", -0.5, 0.5), ("bn._variance", 0.5, 1.5),
                        ("bn.weight", 0.5, 1.5), ("bn.bias", -0.5, 0.5),
                        ("conv.bias", -0.3, 0.3), ("fc.bias", -0.3, 0.3)]:
        sd[key].set_value(rng.uniform(lo, hi, sd[key].shape).astype("float32"))
    c.eval()
    with paddle.no_grad():
        logits = c(paddle.to_tensor(x)).numpy()
    export(c, [x_spec], "paddle_cnn")
    common.write_record("paddle_cnn", "paddle", "reduced (conv+bn+pool+linear)", versions,
                        {"x": x}, logits, exporter)


if __name__ == "__main__":
    sys.exit(main())
