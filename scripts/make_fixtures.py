#!/usr/bin/python3
"""Generate the ONNX fixture models used by the ONNX Model Doctor tests.

Run with Debian's Python (the one that has torch + onnx):

    /usr/bin/python3 scripts/make_fixtures.py

For every fixture <stem> this writes, into test/fixtures/models/:

  <stem>.onnx           the model (opset 17, dynamic batch axis "batch")
  <stem>.probe.npy      float32 N(0,1) probe batch (16 samples, fixed seed)
  <stem>.expected.json  PyTorch reference statistics of every parameterised
                        layer on that probe batch + the findings the doctor
                        must / must not report.

The script is deterministic and idempotent: it fixes every seed, runs torch
single-threaded, and rewrites all outputs (stale generated files of fixtures
that no longer exist are removed). See test/fixtures/README.md.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import warnings

import numpy as np
import onnx
import onnx.checker
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures", "models")
OPSET = 17
PROBE_BATCH = 16

CATEGORIES = [
    "init.zero",
    "init.symmetric",
    "init.scale-small",
    "init.scale-large",
    "weights.nonfinite",
    "activation.vanishing",
    "activation.exploding",
    "activation.dead",
    "activation.saturated",
    "numeric.nonfinite",
]

ACTIVATIONS = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid"}
ACTIVATION_OPS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
PARAM_TYPES = (nn.Linear, nn.Conv2d, nn.BatchNorm2d)


# --------------------------------------------------------------------------
# Model definitions
# --------------------------------------------------------------------------


class MLP(nn.Module):
    """Linear (+activation) stack held in `self.layers` so that ONNX node names
    become /layers/layers.<i>/<Op>."""

    def __init__(self, in_dim, widths, act, out_dim=10, linear_cls=nn.Linear):
        super().__init__()
        mods = []
        d = in_dim
        for w in widths:
            mods.append(linear_cls(d, w))
            mods.append(act())
            d = w
        mods.append(nn.Linear(d, out_dim))
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)

    def linears(self):
        return [m for m in self.layers if isinstance(m, nn.Linear)]


class LoRALinear(nn.Linear):
    """loralib-style LoRA: the module itself is the (frozen) base Linear;
    y = W x + b + B(A x)."""

    def __init__(self, in_features, out_features, r=4):
        super().__init__(in_features, out_features)
        self.lora_A = nn.Linear(in_features, r, bias=False)
        self.lora_B = nn.Linear(r, out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + self.lora_B(self.lora_A(x))


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn + identity Add + relu (separate ReLU modules so
    that each one has its own ONNX scope)."""

    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + x)


class SmallResNet(nn.Module):
    def __init__(self, ch=16, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(ch))
        self.layer2 = nn.Sequential(BasicBlock(ch))
        self.layer3 = nn.Sequential(BasicBlock(ch))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)

    def blocks(self):
        return [self.layer1[0], self.layer2[0], self.layer3[0]]


class SingleLinear(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, x):
        return self.fc(x)


# --------------------------------------------------------------------------
# Fixture builders (each is called right after torch.manual_seed(seed))
# --------------------------------------------------------------------------


def _init_linears(model, weight_fn, bias_fn=nn.init.zeros_):
    with torch.no_grad():
        for lin in model.linears():
            weight_fn(lin.weight)
            bias_fn(lin.bias)
    return model


def he_normal(w):
    nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")


def build_tanh_tiny_init():
    m = MLP(128, [128] * 9, nn.Tanh)
    return _init_linears(m, lambda w: w.copy_(0.01 * torch.randn_like(w)))


def build_tanh_saturating():
    m = MLP(64, [128] * 5, nn.Tanh)
    return _init_linears(m, lambda w: w.copy_(1.0 * torch.randn_like(w)))


def build_relu_3x_he():
    m = MLP(64, [128] * 7, nn.ReLU)

    def init(w):
        fan_in = w.shape[1]
        w.copy_(3.0 * math.sqrt(2.0 / fan_in) * torch.randn_like(w))

    return _init_linears(m, init)


def build_zero_mlp():
    m = MLP(64, [128] * 3, nn.ReLU)
    return _init_linears(m, nn.init.zeros_)


def build_constant_mlp():
    m = MLP(64, [128] * 3, nn.ReLU)
    return _init_linears(m, lambda w: nn.init.constant_(w, 0.05))


def build_dead_relu():
    m = MLP(64, [128] * 3, nn.ReLU)
    _init_linears(m, he_normal)
    with torch.no_grad():
        nn.init.constant_(m.linears()[1].bias, -10.0)  # module layers.2
    return m


def build_nan_weight():
    m = MLP(64, [128] * 3, nn.ReLU)
    _init_linears(m, he_normal)
    with torch.no_grad():
        m.linears()[2].weight[3, 5] = float("nan")  # module layers.4
    return m


def build_relu_he_deep():
    m = MLP(64, [128] * 9, nn.ReLU)
    return _init_linears(m, he_normal)


def build_tanh_xavier():
    m = MLP(64, [128] * 7, nn.Tanh)
    return _init_linears(m, nn.init.xavier_normal_)


def build_sigmoid_deep():
    return MLP(64, [128] * 9, nn.Sigmoid)  # PyTorch default init


def build_lora_mlp():
    m = MLP(64, [128] * 2, nn.ReLU, linear_cls=LoRALinear)
    with torch.no_grad():
        for lin in m.linears():  # base weights of all 3 Linear layers
            he_normal(lin.weight)
            nn.init.zeros_(lin.bias)
    return m


def build_single_linear_zero():
    m = SingleLinear(64, 10)
    with torch.no_grad():
        nn.init.zeros_(m.fc.weight)
        nn.init.zeros_(m.fc.bias)
    return m


def _warm_up_bn(model, seed):
    """A few train-mode forward passes so BN running stats are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, 3, 16, 16, generator=g))
    model.eval()
    return model


def build_resnet_bn():
    return SmallResNet()


def build_resnet_bn_zero_gamma():
    m = SmallResNet()
    with torch.no_grad():
        for b in m.blocks():
            nn.init.zeros_(b.bn2.weight)
    return m


def build_resnet_zero_residual_conv():
    m = SmallResNet()
    with torch.no_grad():
        for b in m.blocks():
            nn.init.zeros_(b.conv2.weight)
    return m


# --------------------------------------------------------------------------
# Fixture table
# --------------------------------------------------------------------------

HEALTHY = dict(must=[], unasserted=[], infoOnly=[])

FIXTURES = [
    dict(
        stem="tanh_tiny_init", seed=101, build=build_tanh_tiny_init, input=[128],
        description="10-layer tanh MLP (128 wide), W = 0.01*randn, b = 0: "
        "textbook vanishing activations",
        must=["init.scale-small", "activation.vanishing"],
        unasserted=["activation.dead"], infoOnly=[],
    ),
    dict(
        stem="tanh_saturating", seed=102, build=build_tanh_saturating, input=[64],
        description="6-layer tanh MLP (128 wide), W = 1.0*randn, b = 0: "
        "saturated tanh",
        must=["init.scale-large", "activation.saturated"],
        unasserted=["activation.exploding"], infoOnly=[],
    ),
    dict(
        stem="relu_3x_he", seed=103, build=build_relu_3x_he, input=[64],
        description="8-layer ReLU MLP (128 wide), W std = 3*sqrt(2/fan_in), "
        "b = 0: exploding activations",
        must=["init.scale-large", "activation.exploding"],
        unasserted=["activation.dead"], infoOnly=[],
    ),
    dict(
        stem="zero_mlp", seed=104, build=build_zero_mlp, input=[64],
        description="ReLU MLP (3 hidden x 128 + output) with every weight and "
        "bias zero",
        must=["init.zero"],
        unasserted=["init.symmetric", "init.scale-small", "activation.vanishing",
                    "activation.dead"],
        infoOnly=[],
    ),
    dict(
        stem="constant_mlp", seed=105, build=build_constant_mlp, input=[64],
        description="ReLU MLP (3 hidden x 128 + output), every weight = 0.05, "
        "b = 0: identical units (symmetry never broken)",
        must=["init.symmetric"],
        unasserted=["init.scale-small", "init.scale-large", "activation.vanishing",
                    "activation.exploding", "activation.dead"],
        infoOnly=[],
    ),
    dict(
        stem="dead_relu", seed=106, build=build_dead_relu, input=[64],
        description="He-init ReLU MLP (3 hidden x 128 + output); layer "
        "index 1 (module layers.2) has bias -10 so its ReLUs never fire",
        must=["activation.dead"],
        unasserted=["activation.vanishing", "init.scale-large"], infoOnly=[],
    ),
    dict(
        stem="nan_weight", seed=107, build=build_nan_weight, input=[64],
        description="He-init ReLU MLP (3 hidden x 128 + output); layer "
        "index 2 (module layers.4) has W[3,5] = NaN",
        must=["weights.nonfinite", "numeric.nonfinite"],
        unasserted=["activation.vanishing", "activation.exploding",
                    "activation.dead", "activation.saturated"],
        infoOnly=[],
    ),
    dict(
        stem="relu_he_deep", seed=108, build=build_relu_he_deep, input=[64],
        description="10-layer ReLU MLP (128 wide), kaiming_normal_(fan_in, "
        "relu), b = 0: healthy control",
        **HEALTHY,
    ),
    dict(
        stem="tanh_xavier", seed=109, build=build_tanh_xavier, input=[64],
        description="8-layer tanh MLP (128 wide), xavier_normal_ (gain 1), "
        "b = 0: healthy control",
        **HEALTHY,
    ),
    dict(
        stem="resnet_bn", seed=110, build=build_resnet_bn, input=[3, 16, 16],
        cnn=True,
        description="small ResNet (stem conv-bn-relu, 3 BasicBlocks of 16 "
        "channels, GAP, fc), PyTorch default init, BN running stats from 5 "
        "train-mode passes: healthy control",
        **HEALTHY,
    ),
    dict(
        stem="resnet_bn_zero_gamma", seed=110, build=build_resnet_bn_zero_gamma,
        input=[3, 16, 16], cnn=True,
        description="resnet_bn with bn2.weight (last BN gamma of every "
        "residual block) = 0 (zero-init-residual trick): healthy",
        must=[], unasserted=[], infoOnly=["init.zero"],
    ),
    dict(
        stem="resnet_zero_residual_conv", seed=110,
        build=build_resnet_zero_residual_conv, input=[3, 16, 16], cnn=True,
        description="resnet_bn with every block's conv2.weight all zero "
        "(zero-init residual branch on a weight): init.zero at most info",
        must=[], unasserted=[], infoOnly=["init.zero"],
    ),
    dict(
        stem="lora_mlp", seed=111, build=build_lora_mlp, input=[64],
        description="3-layer He-init ReLU MLP; both hidden Linear layers carry "
        "a LoRA adapter (r=4) with lora_A kaiming-uniform and lora_B zero",
        must=[], unasserted=[], infoOnly=["init.zero"],
    ),
    dict(
        stem="single_linear_zero", seed=112, build=build_single_linear_zero,
        input=[64],
        description="single nn.Linear(64, 10) with zero weight and bias "
        "(logistic-regression init): init.zero at most info",
        must=[], unasserted=[], infoOnly=["init.zero"],
    ),
    dict(
        stem="sigmoid_deep", seed=113, build=build_sigmoid_deep, input=[64],
        description="10-layer sigmoid MLP (128 wide), PyTorch default init "
        "(for gradient tests; only structural findings are asserted)",
        must=[],
        unasserted=["init.scale-small", "activation.vanishing",
                    "activation.saturated"],
        infoOnly=[],
    ),
]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _unqualified(name):
    """Mirror of torch.onnx.utils._unqualified_variable_name (torch 1.13)."""
    atoms = name.split(".")
    for i in range(len(atoms) - 1, -1, -1):
        if not atoms[i].isnumeric():
            return ".".join(atoms[i:])
    return name


def onnx_scope(qualified):
    """ONNX node-name scope the exporter gives to module `qualified`,
    e.g. layers.0 -> /layers/layers.0/, layer1.0.conv1 -> /layer1/layer1.0/conv1/."""
    parts = qualified.split(".")
    comps = []
    for i in range(1, len(parts) + 1):
        # every prefix is a module (Sequential indices included)
        comps.append(_unqualified(".".join(parts[:i])))
    return "/" + "/".join(comps) + "/"


def find_node(model, qualified, op_types):
    scope = onnx_scope(qualified)
    hits = [
        n for n in model.graph.node
        if n.name.startswith(scope) and "/" not in n.name[len(scope):]
        and n.op_type in op_types
    ]
    if len(hits) != 1:
        raise RuntimeError(
            f"expected exactly one {op_types} node in scope {scope}, got "
            f"{[n.name for n in hits]}")
    return hits[0]


def undeduplicate_initializers(model):
    """torch 1.13 merges initializers with identical *values* (e.g. all-zero
    biases, BN gamma == running_var) and re-creates the others with Identity
    nodes. Undo that so every parameter is its own named initializer."""
    inits = {i.name: i for i in model.graph.initializer}
    graph_outputs = {o.name for o in model.graph.output}
    keep = []
    added = []
    for n in model.graph.node:
        if (n.op_type == "Identity" and len(n.input) == 1 and n.input[0] in inits
                and n.output[0] not in graph_outputs):
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            added.append(t)
        else:
            keep.append(n)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.graph.initializer.extend(added)
    # Sort initializers by name for a stable file layout.
    all_inits = sorted(model.graph.initializer, key=lambda t: t.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(all_inits)
    return len(added)


def tensor_stats(t, channel_dim=1):
    x = t.detach().to(torch.float64)
    finite = torch.isfinite(x)
    xf = x[finite]
    nan_count = int(torch.isnan(x).sum())
    inf_count = int(torch.isinf(x).sum())
    n = x.numel()
    if xf.numel() > 0:
        mean = float(xf.mean())
        std = float(xf.std(unbiased=False))
        mn = float(xf.min())
        mx = float(xf.max())
    else:
        mean = std = mn = mx = None
    zero_fraction = float((x == 0).sum()) / n
    # Fraction of units/channels that are exactly zero for every sample.
    per_ch = (x == 0).transpose(0, channel_dim).reshape(x.shape[channel_dim], -1)
    dead_units = float(per_ch.all(dim=1).to(torch.float64).mean())
    return dict(mean=mean, std=std, min=mn, max=mx, zeroFraction=zero_fraction,
                nanCount=nan_count, infCount=inf_count,
                deadUnitFraction=dead_units)


def saturated_fraction(t, act):
    x = t.detach().to(torch.float64)
    if act == "tanh":
        return float((x.abs() > 0.99).to(torch.float64).mean())
    if act == "sigmoid":
        return float(((x < 0.01) | (x > 0.99)).to(torch.float64).mean())
    return None


def weight_stats(w):
    """Population std and mean of the finite elements of a weight tensor."""
    x = w.detach().to(torch.float64)
    xf = x[torch.isfinite(x)]
    if xf.numel() == 0:
        return None, None
    return float(xf.std(unbiased=False)), float(xf.mean())


def reference_layers(model, probe):
    """Run the eval-mode torch model on the probe with forward hooks.

    Returns one dict per parameterised module (Linear/Conv2d/BatchNorm2d) in
    forward-*start* order (so a LoRA base layer comes before its lora_A/B):
    name, module, output (the module's own output) and act = (activation
    module name, kind, activation output) when an activation module is called
    directly on that very output tensor, else None."""
    names = {m: n for n, m in model.named_modules()}
    calls = []  # in forward-pre order: dict(name, module, input, output)
    handles = []

    def pre_hook(mod, inp):
        calls.append(dict(name=names[mod], module=mod, input=inp, output=None))

    def post_hook(mod, inp, out):
        for c in reversed(calls):
            if c["module"] is mod and c["output"] is None:
                c["output"] = out
                break

    for m in model.modules():
        if m is model:
            continue
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(post_hook))
    with torch.no_grad():
        model(probe)
    for h in handles:
        h.remove()

    layers = []
    for c in calls:
        mod = c["module"]
        if not isinstance(mod, PARAM_TYPES):
            continue
        act = None
        for d in calls:
            kind = ACTIVATIONS.get(type(d["module"]))
            if kind and d["input"] and d["input"][0] is c["output"]:
                act = (d["name"], kind, d["output"])
                break
        layers.append(dict(name=c["name"], module=mod, output=c["output"], act=act))
    return layers


def export_onnx(model, example):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, buf,
            opset_version=OPSET,
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    return onnx.load_from_string(buf.getvalue())


def param_op_types(mod):
    if isinstance(mod, nn.Conv2d):
        return {"Conv"}
    if isinstance(mod, nn.BatchNorm2d):
        return {"BatchNormalization"}
    return {"Gemm", "MatMul"}


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def make_fixture(spec):
    stem = spec["stem"]
    torch.manual_seed(spec["seed"])
    model = spec["build"]()
    if spec.get("cnn"):
        _warm_up_bn(model, spec["seed"] + 5000)
    model.eval()

    rng = np.random.default_rng(spec["seed"] + 1000)
    probe_np = rng.standard_normal((PROBE_BATCH, *spec["input"])).astype(np.float32)
    probe = torch.from_numpy(probe_np)

    # --- ONNX export ---------------------------------------------------------
    onnx_model = export_onnx(model, probe[:2].clone())
    n_undup = undeduplicate_initializers(onnx_model)
    onnx.checker.check_model(onnx_model, full_check=True)
    inits = {i.name for i in onnx_model.graph.initializer}

    # --- torch reference -----------------------------------------------------
    entries = []
    for layer in reference_layers(model, probe):
        name, mod = layer["name"], layer["module"]
        pnode = find_node(onnx_model, name, param_op_types(mod))
        if layer["act"] is not None:
            act_name, act_kind, out = layer["act"]
            snode = find_node(onnx_model, act_name, {ACTIVATION_OPS[act_kind]})
        else:
            act_kind, out = None, layer["output"]
            snode = pnode
        if f"{name}.weight" not in inits:
            raise RuntimeError(f"{stem}: initializer {name}.weight missing")
        entry = dict(module=name, op=pnode.op_type, activation=act_kind)
        entry.update(tensor_stats(out))
        entry["weightStd"], entry["weightMean"] = weight_stats(mod.weight)
        entry["saturatedFraction"] = saturated_fraction(out, act_kind)
        entry["shape"] = list(out.shape)
        entry["onnxNode"] = pnode.name
        entry["onnxTensor"] = snode.output[0]
        entries.append(entry)

    with torch.no_grad():
        y = model(probe)

    unasserted = set(spec["unasserted"])
    must = list(spec["must"])
    info_only = list(spec["infoOnly"])
    overlap = (set(must) & set(info_only)) | (unasserted & (set(must) | set(info_only)))
    assert not overlap, overlap
    must_not = [c for c in CATEGORIES
                if c not in must and c not in info_only and c not in unasserted]

    expected = {
        "model": f"{stem}.onnx",
        "input": f"{stem}.probe.npy",
        "description": spec["description"],
        "inputName": "input",
        "inputShape": [PROBE_BATCH, *spec["input"]],
        "opset": OPSET,
        "seed": spec["seed"],
        "output": tensor_stats(y),
        "layers": entries,
        "expectedFindings": {
            "must": must,
            "mustNot": must_not,
            "infoOnly": info_only,
            "unasserted": [c for c in CATEGORIES if c in unasserted],
        },
    }

    # --- write ---------------------------------------------------------------
    onnx_path = os.path.join(OUT_DIR, f"{stem}.onnx")
    with open(onnx_path, "wb") as f:
        f.write(onnx_model.SerializeToString())
    np.save(os.path.join(OUT_DIR, f"{stem}.probe.npy"), probe_np)
    with open(os.path.join(OUT_DIR, f"{stem}.expected.json"), "w") as f:
        json.dump(expected, f, indent=2, allow_nan=False)
        f.write("\n")

    examples = ", ".join(e["onnxNode"] for e in entries[:2])
    print(f"{stem:27s} {os.path.getsize(onnx_path) / 1024:7.1f} KB  "
          f"{len(onnx_model.graph.node):3d} nodes  {len(entries):2d} layers  "
          f"undedup={n_undup:2d}  must={must or '-'}  info={info_only or '-'}  "
          f"e.g. {examples}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    stems = {s["stem"] for s in FIXTURES}
    assert len(stems) == len(FIXTURES), "duplicate stem"
    for fn in sorted(os.listdir(OUT_DIR)):  # drop outputs of removed fixtures
        for suffix in (".onnx", ".probe.npy", ".expected.json"):
            if fn.endswith(suffix) and fn[: -len(suffix)] not in stems:
                os.remove(os.path.join(OUT_DIR, fn))
    for spec in FIXTURES:
        make_fixture(spec)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"wrote {len(FIXTURES)} fixtures to {os.path.relpath(OUT_DIR, ROOT)} "
          f"({total / 1024:.0f} KB total)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
