"""MindSpore -> ONNX for crates/unidl-onnx-models (issue 5).

Run (own venv: python3.11 -m venv /var/cache/unidl/interop-venvs/mindspore-onnx;
pip install mindspore==2.10.0 "numpy<2" onnx onnxruntime):
    /var/cache/unidl/interop-venvs/mindspore-onnx/bin/python crates/unidl-onnx-models/gen/export_mindspore.py

Writes onnx/mindspore_ref.onnx + .json: the interop reference model
(unidl-interop/tests/fixtures/gen/gen_mindspore.py, weights from
fixtures/mindspore/ref.ckpt) exported with mindspore.onnx.export in
GRAPH_MODE (MindSpore writes opset 11; batch axis dynamic), and
onnx/mindspore_cnn.onnx + .json: the reduced model (conv + BatchNorm + ReLU +
max-pool + global average + dense) with seeded random weights.
"""

import os
import sys

import numpy as np
import mindspore as ms
from mindspore import nn, ops

import common

sys.path.insert(0, os.path.join(common.INTEROP_FIXTURES, "gen"))
from gen_mindspore import RefModel  # noqa: E402


class CnnModel(nn.Cell):
    """The reference model's image branch with its own head: logits [B, 5]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=True)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.fc = nn.Dense(8, 5)

    def construct(self, x):
        y = self.pool(ops.relu(self.bn(self.conv(x))))
        return self.fc(y.mean(axis=(2, 3)))


def export(net, inputs, names, name):
    ms.onnx.export(net, *[ms.Tensor(v) for v in inputs],
                   file_name=os.path.join(common.ONNX_DIR, name + ".onnx"),
                   input_names=names, output_names=["logits"],
                   dynamic_axes={n: {0: "batch"} for n in names})


def main():
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    versions = {"mindspore": ms.__version__, "numpy": np.__version__}
    exporter = f"mindspore.onnx.export (MindSpore {ms.__version__})"
    io = common.interop_io("mindspore")
    x = np.array(io["x"], dtype=np.float32).reshape(io["x_shape"])
    t = np.array(io["t"], dtype=np.int32).reshape(io["t_shape"])

    m = RefModel()
    ms.load_checkpoint(os.path.join(common.INTEROP_FIXTURES, "mindspore", "ref.ckpt"), m)
    m.set_train(False)
    logits = m(ms.Tensor(x), ms.Tensor(t)).asnumpy()
    assert np.abs(logits - np.array(io["logits"]).reshape(logits.shape)).max() < 1e-5
    export(m, [x, t], ["x", "t"], "mindspore_ref")
    common.write_record("mindspore_ref", "mindspore", "reference", versions,
                        {"x": x, "t": t}, logits, exporter)

    ms.set_seed(17)
    rng = np.random.default_rng(17)
    c = CnnModel()
    for p in c.get_parameters():
        if p.name.endswith(("moving_variance", "gamma")):
            v = rng.uniform(0.5, 1.5, p.shape)
        else:
            v = rng.uniform(-0.4, 0.4, p.shape)
        p.set_data(ms.Tensor(v.astype(np.float32)))
    c.set_train(False)
    logits = c(ms.Tensor(x)).asnumpy()
    export(c, [x], ["x"], "mindspore_cnn")
    common.write_record("mindspore_cnn", "mindspore", "reduced (conv+bn+pool+linear)", versions,
                        {"x": x}, logits, exporter)


if __name__ == "__main__":
    sys.exit(main())
