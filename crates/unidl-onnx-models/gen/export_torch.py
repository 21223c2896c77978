"""PyTorch -> ONNX for crates/unidl-onnx-models (issue 5, whole-graph import).

Run (torch venv; `pip install onnx onnxruntime` there):
    /var/cache/unidl/torch-venv/bin/python crates/unidl-onnx-models/gen/export_torch.py

Writes, each with a .json record (inputs, torch's logits, ONNX ops, versions):
- onnx/torch_ref.onnx: the interop reference model
  (unidl-interop/tests/fixtures/gen/gen_pytorch.py, weights from
  fixtures/pytorch/ref.pt) through the dynamo exporter
  (`torch.onnx.export(..., dynamo=True)`, opset 18: torch 2.9's dynamo
  exporter has no opset-17 implementations and its down-conversion fails on
  this graph; static shapes). burn-onnx imports it.
- onnx/refused/torch_ref_ts.onnx: the same model through the TorchScript
  exporter (`dynamo=False`, opset 17, dynamic batch), which burn-onnx 0.22.0
  refuses (see docs/INTEROP.md);
onnx/torch_cnn.onnx + .json: the reduced model (conv + BatchNorm + ReLU +
max-pool + global average + linear) with seeded random weights, exported
without constant folding so BatchNormalization stays a node of its own.
"""

import os
import sys

import numpy as np
import torch
from torch import nn

import common

sys.path.insert(0, os.path.join(common.INTEROP_FIXTURES, "gen"))
from gen_pytorch import RefModel  # noqa: E402


class CnnModel(nn.Module):
    """The reference model's image branch with its own head: logits [B, 5]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = nn.functional.max_pool2d(y, 2, 2)
        return self.fc(y.mean(dim=(2, 3)))


def export_dynamo(model, args, names, path):
    torch.onnx.export(model, args, path, input_names=names, output_names=["logits"],
                      opset_version=18, dynamo=True, external_data=False)


def export(model, args, names, path, fold=True):
    torch.onnx.export(
        model, args, path, input_names=names, output_names=["logits"],
        opset_version=17, dynamo=False, do_constant_folding=fold,
        dynamic_axes={**{n: {0: "batch"} for n in names}, "logits": {0: "batch"}},
    )


def main():
    import onnxscript

    versions = {"torch": torch.__version__, "onnxscript": onnxscript.__version__,
                "numpy": np.__version__}
    exporter = f"torch.onnx.export (TorchScript, dynamo=False) torch {torch.__version__}"
    dynamo = f"torch.onnx.export (dynamo=True, opset 18) torch {torch.__version__}"
    io = common.interop_io("pytorch")
    x = np.array(io["x"], dtype=np.float32).reshape(io["x_shape"])
    t = np.array(io["t"], dtype=np.int64).reshape(io["t_shape"])

    m = RefModel()
    m.load_state_dict(torch.load(os.path.join(common.INTEROP_FIXTURES, "pytorch", "ref.pt")))
    m.eval()
    with torch.no_grad():
        logits = m(torch.from_numpy(x), torch.from_numpy(t)).numpy()
    assert np.abs(logits - np.array(io["logits"]).reshape(logits.shape)).max() < 1e-5
    args = (torch.from_numpy(x), torch.from_numpy(t))
    export_dynamo(m, args, ["x", "t"], common.onnx_path("torch_ref"))
    common.write_record("torch_ref", "pytorch", "reference", versions,
                        {"x": x, "t": t}, logits, dynamo)
    export(m, args, ["x", "t"], common.onnx_path("torch_ref_ts", refused=True))
    common.write_record("torch_ref_ts", "pytorch", "reference", versions,
                        {"x": x, "t": t}, logits, exporter, refused=True)

    torch.manual_seed(17)
    c = CnnModel()
    with torch.no_grad():
        c.bn.running_mean.uniform_(-0.5, 0.5)
        c.bn.running_var.uniform_(0.5, 1.5)
        c.bn.weight.uniform_(0.5, 1.5)
        c.bn.bias.uniform_(-0.5, 0.5)
    c.eval()
    with torch.no_grad():
        logits = c(torch.from_numpy(x)).numpy()
    # No constant folding: keeps BatchNormalization (folding merges it into Conv).
    export(c, (torch.from_numpy(x),), ["x"], common.onnx_path("torch_cnn"), fold=False)
    common.write_record("torch_cnn", "pytorch", "reduced (conv+bn+pool+linear)", versions,
                        {"x": x}, logits, exporter)


if __name__ == "__main__":
    sys.exit(main())
