#!/usr/bin/python3
"""PyTorch autograd oracles for the gradient engine (issue 4).

Run with Debian's Python (the one that has torch + onnx):

    /usr/bin/python3 scripts/make_gradient_fixtures.py

Writes into test/fixtures/gradients/ (and never touches test/fixtures/models/):

  <stem>.onnx              the model, for fixtures defined here (opset per fixture)
  <stem>.probe.npy         the probe batch (16 samples; int64 token ids for the transformers)
  <stem>.labels.npy        int64 class labels for the cross-entropy loss
  <stem>.gradients.json    per parameterised layer: torch autograd l2 of the gradient of the
                           loss with respect to the layer's output and to its weight, for
                           loss "ce" (F.cross_entropy(logits, labels)) and "mse" (mean(y^2)),
                           computed in float64 on the same probe; plus the gradient findings
                           the doctor must / must not report.

Fixtures whose model already lives in test/fixtures/models/ (sigmoid_deep, relu_he_deep,
resnet_bn) are rebuilt from make_fixtures.py's seeds, checked to be bit-identical to the
committed ONNX initializers, and only get a <stem>.gradients.json pointing at those files.

Deterministic: every seed is fixed and torch runs single-threaded. Stems given as arguments
regenerate only those fixtures.

The recurrent fixtures (lstm_2layer, gru_bidir, lstm_bidir_2layer) report one entry per ONNX
LSTM/GRU node: torch's gradient of each layer's output sequence comes from one-layer copies of the
multi-layer module (same weights, checked to give the same output), since nn.LSTM does not expose
its inner layers' outputs.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import sys
import warnings
import zlib

import numpy as np
import onnx
import onnx.checker
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures", "gradients")
MODELS_DIR = os.path.join(ROOT, "test", "fixtures", "models")
PROBE_BATCH = 16
CLASSES = 10
ACTIVATIONS = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.GELU: "gelu"}
ACTIVATION_OPS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}


# --------------------------------------------------------------------------
# Models defined here
# --------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """Conv-BN-ReLU-MaxPool(3/2, pad 1), grouped Conv-BN-ReLU-AvgPool(2), strided dilated
    Conv-BN-ReLU, global average pool, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=2, dilation=2, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.relu3 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(self, x):
        n, t, d = x.shape
        h = self.heads
        dh = d // h
        q = self.q(x).view(n, t, h, dh).transpose(1, 2)
        k = self.k(x).view(n, t, h, dh).transpose(1, 2)
        v = self.v(x).view(n, t, h, dh).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
        return self.o((a @ v).transpose(1, 2).reshape(n, t, d))


class EncoderLayer(nn.Module):
    """Transformer encoder layer: attention + GELU feed-forward, LayerNorm before (pre-norm)
    or after (post-norm) each residual add."""

    def __init__(self, d, heads, ff, pre_norm):
        super().__init__()
        self.pre_norm = pre_norm
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ff)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x):
        if self.pre_norm:
            x = x + self.attn(self.ln1(x))
            return x + self.fc2(self.act(self.fc1(self.ln2(x))))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.fc2(self.act(self.fc1(x))))


class TinyTransformer(nn.Module):
    """Token embedding + learned positions, `layers` encoder layers, (final LayerNorm for
    pre-norm), mean over the sequence, Linear classifier."""

    def __init__(self, layers, pre_norm, vocab=50, seq=8, d=32, heads=4, ff=64):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(1, seq, d))
        self.blocks = nn.Sequential(*[EncoderLayer(d, heads, ff, pre_norm) for _ in range(layers)])
        self.norm = nn.LayerNorm(d) if pre_norm else nn.Identity()
        self.head = nn.Linear(d, CLASSES)

    def forward(self, ids):
        x = self.blocks(self.emb(ids) + self.pos)
        return self.head(self.norm(x).mean(dim=1))


class RecurrentClassifier(nn.Module):
    """A batch-first nn.LSTM or nn.GRU, then a Linear classifier on the mean of its output
    sequence, optionally joined by the last layer's final hidden state h_n (the ONNX Y_h output)
    and cell state c_n (Y_c)."""

    def __init__(self, rnn, use_h=False, use_c=False):
        super().__init__()
        self.rnn = rnn
        self.use_h, self.use_c = use_h, use_c
        nd = 2 if rnn.bidirectional else 1
        width = nd * rnn.hidden_size
        self.fc = nn.Linear(width * (1 + use_h + use_c), CLASSES)

    def features(self, output, h_n, c_n):
        nd = 2 if self.rnn.bidirectional else 1
        last = lambda s: s[-nd:].transpose(0, 1).reshape(s.shape[1], -1)  # noqa: E731
        parts = [output.mean(dim=1)]
        if self.use_h:
            parts.append(last(h_n))
        if self.use_c:
            parts.append(last(c_n))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def forward(self, x):
        output, state = self.rnn(x)
        h_n, c_n = state if isinstance(self.rnn, nn.LSTM) else (state, None)
        return self.fc(self.features(output, h_n, c_n))


def build_recurrent(cls, input_size, hidden, layers, bidirectional, use_h=False, use_c=False):
    def build():
        rnn = cls(input_size, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        return RecurrentClassifier(rnn, use_h, use_c)
    return build


def perturb_norms(model, seed):
    """LayerNorm/BatchNorm affine parameters away from 1/0, so their gradients are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def build_cnn():
    m = SmallCNN()
    perturb_norms(m, 7)
    mf._warm_up_bn(m, 5301)
    return m


def build_transformer(layers, pre_norm):
    def build():
        m = TinyTransformer(layers, pre_norm)
        perturb_norms(m, 11)
        return m
    return build


# --------------------------------------------------------------------------
# Fixture table
# --------------------------------------------------------------------------

HEALTHY = dict(must=[], mustNot=["gradient.vanishing", "gradient.exploding"])

FIXTURES = [
    # Existing models (test/fixtures/models), rebuilt from make_fixtures.py's seeds.
    dict(stem="sigmoid_deep", existing=True, must=["gradient.vanishing"], mustNot=["gradient.exploding"],
         description="10-layer sigmoid MLP, PyTorch default init: vanishing gradients"),
    dict(stem="relu_he_deep", existing=True, **HEALTHY,
         description="10-layer He-init ReLU MLP: healthy control"),
    dict(stem="tanh_xavier", existing=True, **HEALTHY,
         description="8-layer Xavier tanh MLP: healthy control"),
    dict(stem="resnet_bn", existing=True, **HEALTHY,
         description="small ResNet with BatchNorm: healthy control"),
    # Defined here.
    dict(stem="cnn_pool_bn", seed=201, build=build_cnn, input=("normal", [3, 16, 16]), opset=17, **HEALTHY,
         description="Conv-BN-ReLU-MaxPool(3/2, pad 1), grouped Conv-BN-ReLU-AvgPool(2), strided dilated "
         "Conv-BN-ReLU, GAP, Linear; BN running stats from 5 train-mode passes"),
    dict(stem="transformer_prenorm", seed=202, build=build_transformer(1, True), input=("ids", [8]), opset=17, **HEALTHY,
         description="embedding + 1 pre-norm encoder layer (4-head attention, LayerNormalization op, "
         "GELU feed-forward) + final LayerNorm, mean pool, Linear; opset 17"),
    dict(stem="transformer_postnorm", seed=203, build=build_transformer(1, False), input=("ids", [8]), opset=11, **HEALTHY,
         description="embedding + 1 post-norm encoder layer; opset 11, so LayerNorm and GELU are "
         "decomposed into primitive ops and Unsqueeze/ReduceMean take attribute axes"),
    dict(stem="transformer_prenorm_deep", seed=204, build=build_transformer(6, True), input=("ids", [8]), opset=17, **HEALTHY,
         description="6 pre-norm encoder layers: healthy deep control for the gradient rules"),
    # Recurrent (ONNX LSTM/GRU ops; exported with constant folding so W/R/B are initializers).
    dict(stem="lstm_2layer", seed=205, build=build_recurrent(nn.LSTM, 8, 16, 2, False, use_h=True), input=("normal", [12, 8]),
         opset=17, recurrent=True, **HEALTHY,
         description="2-layer nn.LSTM (hidden 16, batch_first), Linear on the mean over 12 steps and h_n: "
         "two forward LSTM ops, gradients from Y and Y_h"),
    dict(stem="gru_bidir", seed=206, build=build_recurrent(nn.GRU, 8, 12, 1, True, use_h=True), input=("normal", [10, 8]),
         opset=14, recurrent=True, **HEALTHY,
         description="bidirectional nn.GRU (hidden 12, linear_before_reset 1), Linear on the mean over 10 steps and "
         "both directions' h_n; opset 14"),
    dict(stem="lstm_bidir_2layer", seed=207, build=build_recurrent(nn.LSTM, 6, 10, 2, True, use_c=True), input=("normal", [9, 6]),
         opset=17, recurrent=True, **HEALTHY,
         description="2-layer bidirectional nn.LSTM (hidden 10), Linear on the mean over 9 steps and the last "
         "layer's c_n: gradients from Y and Y_c"),
]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def export(model, example, opset, fold=False):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, buf, opset_version=opset, do_constant_folding=fold,
            training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    m = onnx.load_from_string(buf.getvalue())
    mf.undeduplicate_initializers(m)
    onnx.checker.check_model(m, full_check=True)
    return m


def param_ops(mod):
    if isinstance(mod, nn.Conv2d):
        return {"Conv"}
    if isinstance(mod, nn.BatchNorm2d):
        return {"BatchNormalization"}
    if isinstance(mod, nn.LayerNorm):
        return {"LayerNormalization"}
    if isinstance(mod, nn.Embedding):
        return {"Gather"}
    return {"Gemm", "MatMul"}


def scope_nodes(model, qualified):
    scope = mf.onnx_scope(qualified)
    return [n for n in model.graph.node if n.name.startswith(scope) and "/" not in n.name[len(scope):]]


def scope_output(model, qualified):
    """The one tensor a module's nodes hand on: an activation exported as several ops (GELU
    before opset 20: Div, Erf, Add, Mul, Mul) ends in the node no other node of the scope reads."""
    nodes = scope_nodes(model, qualified)
    read = {i for n in nodes for i in n.input}
    ends = [o for n in nodes for o in n.output if o not in read]
    if len(ends) != 1:
        raise RuntimeError(f"{qualified}: expected one output, got {ends}")
    return ends[0]


def layer_nodes(onnx_model, name, mod):
    """(parameterised node, tensor that the doctor reports for the layer) or None when the
    module has no node of its own (decomposed LayerNorm before opset 17)."""
    ops = param_ops(mod)
    nodes = [n for n in scope_nodes(onnx_model, name) if n.op_type in ops]
    if len(nodes) != 1:
        if isinstance(mod, nn.LayerNorm):
            return None
        raise RuntimeError(f"{name}: expected one {ops} node, got {[n.name for n in nodes]}")
    node = nodes[0]
    tensor = node.output[0]
    if node.op_type == "MatMul":  # Linear on 3-D input: MatMul + Add(bias) in the same scope
        adds = [n for n in scope_nodes(onnx_model, name) if n.op_type == "Add" and tensor in n.input]
        if adds:
            tensor = adds[0].output[0]
    return node, tensor


def torch_gradients(model, probe, labels, loss):
    """Per parameterised module: l2 of d loss / d output (the activation's output when an
    activation module is applied directly to it) and of d loss / d weight, in float64."""
    model = model.double()
    names = {m: n for n, m in model.named_modules()}
    outputs = {}
    handles = []

    def hook(mod, inp, out):
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.retain_grad()
            outputs[mod] = (inp[0] if inp else None, out)

    for m in model.modules():
        if m is not model:
            handles.append(m.register_forward_hook(hook))
    model.zero_grad()
    x = probe if probe.dtype == torch.int64 else probe.double()
    y = model(x)
    if loss == "ce":
        value = F.cross_entropy(y, labels)
    else:
        value = (y ** 2).mean()
    value.backward()
    for h in handles:
        h.remove()
    result = {}
    for mod, (inp, out) in outputs.items():
        if not isinstance(mod, (nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.LayerNorm, nn.Embedding)):
            continue
        act = None
        for other, (oin, oout) in outputs.items():
            kind = ACTIVATIONS.get(type(other))
            if kind and oin is out:
                act = (names[other], kind, oout)
        grad_out = act[2].grad if act else out.grad
        result[names[mod]] = dict(
            act=act[:2] if act else None,
            outputGradL2=float(grad_out.norm()),
            weightGradL2=float(mod.weight.grad.norm()),
        )
    return float(value), result


def single_layers(rnn):
    """The layers of a multi-layer nn.LSTM/nn.GRU as separate one-layer modules with the same
    weights, so each layer's output sequence is a tensor autograd can report the gradient of."""
    nd = 2 if rnn.bidirectional else 1
    layers = []
    for k in range(rnn.num_layers):
        m = type(rnn)(rnn.input_size if k == 0 else nd * rnn.hidden_size, rnn.hidden_size, num_layers=1,
                      batch_first=rnn.batch_first, bidirectional=rnn.bidirectional).double()
        with torch.no_grad():
            for suffix in ["", "_reverse"][:nd]:
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(m, f"{name}_l0{suffix}").copy_(getattr(rnn, f"{name}_l{k}{suffix}"))
        layers.append(m)
    return layers


def recurrent_gradients(model, onnx_model, probe, labels, loss):
    """Per recurrent layer (one ONNX LSTM/GRU node each) and for the Linear head: torch autograd
    l2 of d loss / d output (the layer's whole output sequence, which is the ONNX Y) and of
    d loss / d W (ONNX W stacks weight_ih of both directions in gate order iofc/zrh, a permutation
    of torch's rows, so the l2 is the same), in float64."""
    model = model.double()
    rnn = model.rnn
    layers = single_layers(rnn)
    x = probe.double()
    out, outs, hs, cs = x, [], [], []
    for m in layers:
        out, state = m(out)
        out.retain_grad()
        outs.append(out)
        h, c = state if isinstance(m, nn.LSTM) else (state, None)
        hs.append(h)
        cs.append(c)
    h_n = torch.cat(hs)
    c_n = torch.cat(cs) if isinstance(rnn, nn.LSTM) else None
    with torch.no_grad():
        ref, _ = rnn(x)
        if not torch.allclose(ref, out, atol=1e-12):
            raise RuntimeError("the one-layer copies do not reproduce the multi-layer module")
    y = model.fc(model.features(out, h_n, c_n))
    y.retain_grad()
    value = F.cross_entropy(y, labels) if loss == "ce" else (y ** 2).mean()
    value.backward()
    op = "LSTM" if isinstance(rnn, nn.LSTM) else "GRU"
    nodes = [n for n in onnx_model.graph.node if n.op_type == op]
    if len(nodes) != len(layers):
        raise RuntimeError(f"expected {len(layers)} {op} nodes, got {[n.name for n in nodes]}")
    entries = []
    for k, (m, node) in enumerate(zip(layers, nodes)):
        suffixes = ["", "_reverse"][:2 if rnn.bidirectional else 1]
        weight = math.sqrt(sum(float(getattr(m, f"weight_ih_l0{s}").grad.norm()) ** 2 for s in suffixes))
        entries.append(dict(module=f"rnn.layer{k}", onnxNode=node.name, onnxTensor=node.output[0],
                            outputGradL2=float(outs[k].grad.norm()), weightGradL2=weight))
    fc_node, fc_tensor = layer_nodes(onnx_model, "fc", model.fc)
    entries.append(dict(module="fc", onnxNode=fc_node.name, onnxTensor=fc_tensor,
                        outputGradL2=float(y.grad.norm()), weightGradL2=float(model.fc.weight.grad.norm())))
    return float(value), entries


def existing_spec(stem):
    spec = next(s for s in mf.FIXTURES if s["stem"] == stem)
    torch.manual_seed(spec["seed"])
    model = spec["build"]()
    if spec.get("cnn"):
        mf._warm_up_bn(model, spec["seed"] + 5000)
    model.eval()
    onnx_model = onnx.load(os.path.join(MODELS_DIR, f"{stem}.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx_model.graph.initializer}
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        if name in inits and not np.array_equal(inits[name], p.detach().numpy()):
            raise RuntimeError(f"{stem}: {name} differs from the committed ONNX file; regenerate both")
    probe = torch.from_numpy(np.load(os.path.join(MODELS_DIR, f"{stem}.probe.npy")))
    return model, onnx_model, probe, 17, f"../models/{stem}.onnx", f"../models/{stem}.probe.npy"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def make(spec):
    stem = spec["stem"]
    if spec.get("existing"):
        model, onnx_model, probe, opset, model_file, probe_file = existing_spec(stem)
        label_seed = zlib.crc32(stem.encode()) % 1000
    else:
        torch.manual_seed(spec["seed"])
        model = spec["build"]().eval()
        rng = np.random.default_rng(spec["seed"] + 1000)
        kind, shape = spec["input"]
        if kind == "ids":
            probe_np = rng.integers(0, 50, size=(PROBE_BATCH, *shape), dtype=np.int64)
        else:
            probe_np = rng.standard_normal((PROBE_BATCH, *shape)).astype(np.float32)
        probe = torch.from_numpy(probe_np)
        opset = spec["opset"]
        onnx_model = export(model, probe[:2].clone(), opset, fold=spec.get("recurrent", False))
        model_file, probe_file = f"{stem}.onnx", f"{stem}.probe.npy"
        with open(os.path.join(OUT_DIR, model_file), "wb") as f:
            f.write(onnx_model.SerializeToString())
        np.save(os.path.join(OUT_DIR, probe_file), probe_np)
        label_seed = spec["seed"]
    labels_np = np.random.default_rng(label_seed + 77).integers(0, CLASSES, size=(PROBE_BATCH,), dtype=np.int64)
    np.save(os.path.join(OUT_DIR, f"{stem}.labels.npy"), labels_np)
    labels = torch.from_numpy(labels_np)

    losses = {}
    for loss in ("ce", "mse"):
        if spec.get("recurrent"):
            value, entries = recurrent_gradients(copy.deepcopy(model), onnx_model, probe, labels, loss)
            losses[loss] = dict(value=value, layers=entries)
            continue
        value, grads = torch_gradients(model, probe, labels, loss)
        entries = []
        for name, mod in model.named_modules():
            if name not in grads:
                continue
            found = layer_nodes(onnx_model, name, mod)
            if found is None:
                continue
            node, tensor = found
            g = grads[name]
            if g["act"] and g["act"][1] == "gelu":
                tensor = scope_output(onnx_model, g["act"][0])
            elif g["act"]:
                act_node = [n for n in scope_nodes(onnx_model, g["act"][0]) if n.op_type == ACTIVATION_OPS[g["act"][1]]]
                if len(act_node) != 1:
                    raise RuntimeError(f"{stem}: activation node of {name}")
                tensor = act_node[0].output[0]
            entries.append(dict(module=name, onnxNode=node.name, onnxTensor=tensor,
                                outputGradL2=g["outputGradL2"], weightGradL2=g["weightGradL2"]))
        losses[loss] = dict(value=value, layers=entries)

    expected = dict(
        model=model_file, input=probe_file, labels=f"{stem}.labels.npy", opset=opset,
        description=spec["description"], batch=PROBE_BATCH,
        losses=losses,
        findings=dict(must=spec["must"], mustNot=spec["mustNot"]),
    )
    with open(os.path.join(OUT_DIR, f"{stem}.gradients.json"), "w") as f:
        json.dump(expected, f, indent=2, allow_nan=False)
        f.write("\n")
    ops = sorted({n.op_type for n in onnx_model.graph.node})
    print(f"{stem:26s} opset {opset}  {len(losses['ce']['layers']):2d} layers  ce={losses['ce']['value']:.4f}  "
          f"mse={losses['mse']['value']:.4f}  ops: {' '.join(ops)}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    only = set(sys.argv[1:])
    for spec in FIXTURES:
        if not only or spec["stem"] in only:
            make(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
