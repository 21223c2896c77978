#!/usr/bin/env python3
"""Reference values for the cross-back-end conformance suite.

Runs every tensor operation and module of the suite in PyTorch (CPU, float32
unless the case says otherwise) on seeded inputs and writes inputs, arguments
and outputs to `reference.json` beside this file. The Rust suite reads that
file and needs no Python.

Run (from the repository root):
    /var/cache/unidl/torch-venv/bin/python tests/conformance/gen_reference.py

Requires torch==2.9.0 and numpy (the CI torch venv has both).
"""
import json
import pathlib
import platform

import numpy as np
import torch

torch.manual_seed(0)
rng = np.random.default_rng(20231226)
OUT = pathlib.Path(__file__).with_name("reference.json")


def enc(t):
    """Encode a tensor as {shape, dtype, data} (complex as [re, im] pairs)."""
    if isinstance(t, (list, tuple)):
        return [enc(x) for x in t]
    t = torch.as_tensor(t).detach()
    if t.is_complex():
        flat = t.reshape(-1)
        data = [[float(z.real), float(z.imag)] for z in flat]
        return {"shape": list(t.shape), "dtype": "complex64", "data": data}
    name = {
        torch.float32: "float32",
        torch.float64: "float64",
        torch.int64: "int64",
        torch.int32: "int32",
        torch.bool: "bool",
        torch.uint8: "uint8",
    }[t.dtype]
    flat = t.reshape(-1).tolist()
    return {"shape": list(t.shape), "dtype": name, "data": flat}


def f32(*shape, low=-2.0, high=2.0):
    return torch.tensor(rng.uniform(low, high, size=shape), dtype=torch.float32)


def ints(*shape, low=-5, high=6):
    return torch.tensor(rng.integers(low, high, size=shape), dtype=torch.int64)


def bools(*shape):
    return torch.tensor(rng.integers(0, 2, size=shape).astype(bool))


cases = []


def case(name, op, inputs, args=None, out=None):
    cases.append({"name": name, "op": op, "inputs": enc(inputs), "args": args or {}, "output": enc(out)})


# ----- unary float math -----
x = f32(3, 4)
pos = f32(3, 4, low=0.1, high=3.0)
unit = f32(3, 4, low=-0.95, high=0.95)
for op, inp, fn in [
    ("neg", x, torch.neg), ("abs", x, torch.abs), ("square", x, torch.square),
    ("sqrt", pos, torch.sqrt), ("exp", x, torch.exp), ("log", pos, torch.log),
    ("sin", x, torch.sin), ("cos", x, torch.cos), ("tan", unit, torch.tan),
    ("asin", unit, torch.asin), ("acos", unit, torch.acos), ("atan", x, torch.atan),
    ("sinh", x, torch.sinh), ("cosh", x, torch.cosh), ("tanh", x, torch.tanh),
    ("sigmoid", x, torch.sigmoid), ("relu", x, torch.relu),
    ("gelu", x, torch.nn.functional.gelu), ("floor", x, torch.floor), ("ceil", x, torch.ceil),
]:
    case(op, op, [inp], out=fn(inp))

# ----- binary with broadcasting -----
a, b = f32(2, 3, 4), f32(3, 1)
bp = f32(3, 1, low=0.5, high=2.0)
for op, fn, rhs in [
    ("add", torch.add, b), ("sub", torch.sub, b), ("mul", torch.mul, b), ("div", torch.div, bp),
    ("atan2", torch.atan2, b), ("gt", torch.gt, b), ("ge", torch.ge, b), ("lt", torch.lt, b),
    ("le", torch.le, b), ("eq", torch.eq, b), ("ne", torch.ne, b),
]:
    case(f"{op}_broadcast", op, [a, rhs], out=fn(a, rhs))
base = f32(2, 3, low=0.2, high=2.0)
expo = f32(3, low=-1.5, high=1.5)
case("pow_broadcast", "pow", [base, expo], out=torch.pow(base, expo))
eqa = torch.tensor([[1.0, 2.0, 3.0], [4.0, 2.0, 6.0]])
eqb = torch.tensor([1.0, 2.0, 6.0])
case("eq_exact", "eq", [eqa, eqb], out=torch.eq(eqa, eqb))
ia, ib = ints(2, 3), ints(3)
case("add_int", "add", [ia, ib], out=ia + ib)
case("mul_int", "mul", [ia, ib], out=ia * ib)
case("div_int_true", "div", [ia, torch.tensor([1, 2, 4])], out=ia / torch.tensor([1, 2, 4]))
fb = f32(3)
case("add_int_float_promotes", "add", [ia, fb], out=ia + fb)
p, q = bools(2, 5), bools(2, 5)
for op, fn in [("logical_and", torch.logical_and), ("logical_or", torch.logical_or), ("logical_xor", torch.logical_xor)]:
    case(op, op, [p, q], out=fn(p, q))
case("logical_not", "logical_not", [p], out=torch.logical_not(p))
la, lb = torch.tensor([0.0, 1.5, -2.0, 0.0]), torch.tensor([3, 0, 2, 0])
case("logical_and_numeric", "logical_and", [la, lb], out=torch.logical_and(la, lb))

# ----- reductions -----
r = f32(2, 3, 4)
for op, fn in [("sum", torch.sum), ("mean", torch.mean), ("max", torch.amax), ("min", torch.amin)]:
    case(f"{op}_all", op, [r], {"dims": None, "keepdim": False}, fn(r))
    case(f"{op}_dim1_keep", op, [r], {"dims": [1], "keepdim": True}, fn(r, dim=1, keepdim=True))
    case(f"{op}_dims02", op, [r], {"dims": [0, -1], "keepdim": False}, fn(r, dim=(0, 2)))
ri = ints(3, 4)
case("sum_int", "sum", [ri], {"dims": [0], "keepdim": False}, torch.sum(ri, dim=0))
case("mean_int", "mean", [ri], {"dims": None, "keepdim": False}, torch.mean(ri.float()))
case("argmax_dim", "argmax", [r], {"dim": 2, "keepdim": False}, torch.argmax(r, dim=2))
case("argmin_dim_keep", "argmin", [r], {"dim": 1, "keepdim": True}, torch.argmin(r, dim=1, keepdim=True))
case("argmax_flat", "argmax", [r], {"dim": None, "keepdim": False}, torch.argmax(r))
case("softmax", "softmax", [r], {"dim": -1}, torch.softmax(r, dim=-1))
case("log_softmax", "log_softmax", [r], {"dim": 1}, torch.log_softmax(r, dim=1))

# ----- matmul -----
m1, m2 = f32(3, 4), f32(4, 5)
case("matmul_2d", "matmul", [m1, m2], out=m1 @ m2)
b1, b2 = f32(2, 1, 3, 4), f32(3, 4, 5)
case("matmul_batched_broadcast", "matmul", [b1, b2], out=b1 @ b2)
v = f32(4)
case("matmul_vec_mat", "matmul", [v, m2], out=v @ m2)
case("matmul_mat_vec", "matmul", [m1, v], out=m1 @ v)

# ----- structural -----
s = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
case("reshape_infer", "reshape", [s], {"shape": [-1, 6]}, s.reshape(-1, 6))
case("permute", "permute", [s], {"dims": [2, 0, 1]}, s.permute(2, 0, 1))
case("transpose", "transpose", [s], {"d0": 0, "d1": 2}, s.transpose(0, 2))
case("index_int_neg", "index", [s], {"items": [["at", 1], ["at", -1]]}, s[1, -1])
case("index_step", "index", [s], {"items": [["full"], ["slice", 0, None, 2], ["slice", None, None, 3]]}, s[:, 0::2, ::3])
case("index_neg_step", "index", [s], {"items": [["slice", None, None, -1], ["at", 2]]}, torch.flip(s, [0])[:, 2])
case("index_newaxis_ellipsis", "index", [s], {"items": [["new"], ["ellipsis"], ["slice", 1, 3, 1]]}, s[None, ..., 1:3])
case("permute_then_index", "permute_index", [s], {"dims": [1, 2, 0], "items": [["slice", 1, None, 1], ["at", 0]]}, s.permute(1, 2, 0)[1:, 0])
c1, c2 = f32(2, 3), f32(2, 2)
case("concat", "concat", [c1, c2], {"dim": 1}, torch.cat([c1, c2], dim=1))
c3 = f32(2, 3)
case("stack", "stack", [c1, c3], {"dim": 1}, torch.stack([c1, c3], dim=1))
case("split", "split", [s], {"size": 2, "dim": 2}, list(torch.split(s, 2, dim=2)))
case("chunk", "chunk", [s], {"chunks": 2, "dim": 1}, list(torch.chunk(s, 2, dim=1)))
sq = f32(2, 1, 3, 1)
case("squeeze", "squeeze", [sq], {"dim": None}, sq.squeeze())
case("unsqueeze", "unsqueeze", [c1], {"dim": -1}, c1.unsqueeze(-1))
case("flatten", "flatten", [s], {"start": 1, "end": 2}, s.flatten(1, 2))
case("cast_float_int", "cast", [x * 3], {"dtype": "int64"}, (x * 3).to(torch.int64))
case("cast_int_float", "cast", [ia], {"dtype": "float32"}, ia.float())
case("cast_float_bool", "cast", [torch.tensor([0.0, 1.5, -2.0, 0.0])], {"dtype": "bool"}, torch.tensor([0.0, 1.5, -2.0, 0.0]).bool())

# ----- complex64 -----
za = torch.complex(f32(2, 3), f32(2, 3))
zb = torch.complex(f32(3), f32(3))
case("complex_add", "add", [za, zb], out=za + zb)
case("complex_mul", "mul", [za, zb], out=za * zb)
case("complex_div", "div", [za, zb], out=za / zb)
case("complex_abs", "abs", [za], out=za.abs())
case("complex_conj", "conj", [za], out=torch.conj(za).resolve_conj())
zm = torch.complex(f32(3, 2), f32(3, 2))
case("complex_matmul", "matmul", [za, zm], out=za @ zm)

# ----- modules: forward, and backward of a fixed grad_output -----
modules = []


def module_case(name, kind, mod, inp, config, train=False):
    mod.train(train)
    inp = inp.clone().requires_grad_(inp.is_floating_point())
    out = mod(inp)
    if isinstance(out, tuple):
        out = out[0]
    g = torch.tensor(rng.uniform(-1, 1, size=out.shape), dtype=torch.float32)
    out.backward(g)
    state = {k: enc(v) for k, v in mod.state_dict().items() if v.dtype != torch.int64}
    grads = {k: enc(p.grad) for k, p in mod.named_parameters() if p.grad is not None}
    modules.append({
        "name": name, "kind": kind, "config": config, "train": train,
        "state": state, "input": enc(inp), "output": enc(out), "grad_output": enc(g),
        "input_grad": enc(inp.grad) if inp.grad is not None else None, "param_grads": grads,
    })


torch.manual_seed(1)
module_case("linear", "linear", torch.nn.Linear(5, 3), f32(4, 5), {"d_in": 5, "d_out": 3})
module_case("conv1d", "conv1d", torch.nn.Conv1d(2, 3, 3, stride=2, padding=1), f32(2, 2, 9),
            {"c_in": 2, "c_out": 3, "k": 3, "stride": 2, "padding": 1})
module_case("conv2d", "conv2d", torch.nn.Conv2d(2, 4, 3, stride=1, padding=1), f32(2, 2, 6, 5),
            {"c_in": 2, "c_out": 4, "k": 3, "stride": 1, "padding": 1})
module_case("conv3d", "conv3d", torch.nn.Conv3d(2, 3, 2, stride=1, padding=0), f32(1, 2, 4, 4, 3),
            {"c_in": 2, "c_out": 3, "k": 2, "stride": 1, "padding": 0})
module_case("conv_transpose2d", "conv_transpose2d", torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1),
            f32(1, 3, 4, 4), {"c_in": 3, "c_out": 2, "k": 3, "stride": 2, "padding": 1})
bn = torch.nn.BatchNorm2d(3)
with torch.no_grad():
    bn.running_mean.copy_(f32(3, low=-0.5, high=0.5))
    bn.running_var.copy_(f32(3, low=0.5, high=1.5))
    bn.weight.copy_(f32(3, low=0.5, high=1.5))
    bn.bias.copy_(f32(3, low=-0.5, high=0.5))
module_case("batchnorm2d_eval", "batchnorm2d", bn, f32(2, 3, 4, 4), {"c": 3})
module_case("batchnorm2d_train", "batchnorm2d", torch.nn.BatchNorm2d(3), f32(4, 3, 3, 3), {"c": 3}, train=True)
module_case("layernorm", "layernorm", torch.nn.LayerNorm(6), f32(3, 6), {"d": 6})
module_case("groupnorm", "groupnorm", torch.nn.GroupNorm(2, 4), f32(2, 4, 3, 3), {"groups": 2, "c": 4})
module_case("maxpool2d", "maxpool2d", torch.nn.MaxPool2d(2, stride=2), f32(1, 2, 4, 6), {"k": 2, "stride": 2})
module_case("avgpool2d", "avgpool2d", torch.nn.AvgPool2d(2, stride=1), f32(1, 2, 4, 5), {"k": 2, "stride": 1})
module_case("maxpool3d", "maxpool3d", torch.nn.MaxPool3d(2, stride=2), f32(1, 2, 4, 4, 6), {"k": 2, "stride": 2})
module_case("avgpool3d", "avgpool3d", torch.nn.AvgPool3d(2, stride=1), f32(1, 2, 3, 4, 4), {"k": 2, "stride": 1})
module_case("adaptive_avgpool2d", "adaptive_avgpool2d", torch.nn.AdaptiveAvgPool2d((2, 3)), f32(1, 2, 5, 7), {"out": [2, 3]})
module_case("embedding", "embedding", torch.nn.Embedding(10, 4), torch.tensor([[1, 3, 9], [0, 3, 5]]), {"n": 10, "d": 4})
module_case("lstm_2layer_bi", "lstm", torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True),
            f32(2, 5, 3), {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True})
module_case("gru_2layer", "gru", torch.nn.GRU(3, 4, num_layers=2, batch_first=True),
            f32(2, 5, 3), {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": False})
module_case("rnn_bi", "rnn", torch.nn.RNN(3, 4, num_layers=1, bidirectional=True, batch_first=True),
            f32(2, 5, 3), {"input_size": 3, "hidden_size": 4, "num_layers": 1, "bidirectional": True})

OUT.write_text(json.dumps({
    "generator": "tests/conformance/gen_reference.py",
    "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
    "cases": cases, "modules": modules,
}, indent=None, separators=(",", ":")))
print(f"wrote {len(cases)} op cases and {len(modules)} module cases to {OUT}")
