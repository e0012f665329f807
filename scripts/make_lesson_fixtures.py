#!/usr/bin/python3
"""Generate the fixtures of the seed's remaining lessons (issue 5) for the ONNX Model Doctor tests.

Run with Debian's Python (the one that has torch + onnx):

    /usr/bin/python3 scripts/make_lesson_fixtures.py      # or: npm run gen:lesson-fixtures

Writes into test/fixtures/lessons/ (never touches test/fixtures/models/):

  <stem>.onnx             the model, exported from PyTorch 1.13
  <stem>.probe.npy        probe data for --input, when the lesson is about data or BN statistics
  <stem>.train.npz / .val.npz   labelled sets for --train-data / --val-data (fit lessons)
  <stem>.expected.json    what the doctor must and must not report, and the architecture verdict
  linalg_*.npy + linalg_oracle.json   matrices and numpy's eigenvalues, the oracle of src/stats/linalg.ts

Every fault fixture has a healthy control (see test/fixtures/lessons/README.md). The script is
deterministic: fixed seeds, one torch thread; it rewrites everything it owns.
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
import onnx.helper
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.onnx import TrainingMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures", "lessons")

LESSON_CATEGORIES = [
    "norm.post-norm", "norm.dropout-before-bn", "norm.bn-variance", "export.training-mode",
    "input.unnormalized", "input.correlated", "recurrent.spectral-radius", "numeric.fp16-range",
    "fit.high-bias", "fit.high-variance",
]


def export(model, example, opset=17, training=TrainingMode.EVAL, dynamic=True, output_names=("output",)):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, buf, opset_version=opset, do_constant_folding=training == TrainingMode.EVAL,
            training=training, input_names=["input"], output_names=list(output_names),
            dynamic_axes={"input": {0: "batch"}} if dynamic else None,
        )
    m = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(m)
    return m


# --------------------------------------------------------------------------
# Normalization placement (norm.post-norm)
# --------------------------------------------------------------------------

D_MODEL = 32


def transformer(layers, norm_first, final_norm=False, eps=1e-5):
    layer = nn.TransformerEncoderLayer(D_MODEL, 4, dim_feedforward=64, dropout=0.1, batch_first=True,
                                       norm_first=norm_first, layer_norm_eps=eps)
    norm = nn.LayerNorm(D_MODEL, eps=eps) if final_norm else None
    return nn.TransformerEncoder(layer, layers, norm=norm, enable_nested_tensor=False)


class RMSNorm(nn.Module):
    """LLaMA's RMSNorm: x / sqrt(mean(x^2) + eps) * weight (no mean subtraction, no bias)."""

    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class RMSBlock(nn.Module):
    """A decoder-style block without masks: attention + MLP, each with an RMSNorm before (pre)
    or after the residual Add (post)."""

    def __init__(self, d, pre):
        super().__init__()
        self.pre = pre
        self.attn_norm = RMSNorm(d)
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.mlp_norm = RMSNorm(d)
        self.up = nn.Linear(d, 2 * d)
        self.down = nn.Linear(2 * d, d)

    def mlp(self, x):
        return self.down(F.silu(self.up(x)))

    def forward(self, x):
        if self.pre:
            h = self.attn_norm(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.mlp_norm(x))
        x = self.attn_norm(x + self.attn(x, x, x, need_weights=False)[0])
        return self.mlp_norm(x + self.mlp(x))


class RMSStack(nn.Module):
    def __init__(self, layers, pre):
        super().__init__()
        self.layers = nn.ModuleList(RMSBlock(D_MODEL, pre) for _ in range(layers))
        self.norm = RMSNorm(D_MODEL) if pre else None

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x) if self.norm is not None else x


def seq_input(seed, n=8, t=10):
    return np.random.default_rng(seed).standard_normal((n, t, D_MODEL)).astype(np.float32)


# --------------------------------------------------------------------------
# Dropout and BatchNorm (norm.dropout-before-bn, export.training-mode, norm.bn-variance)
# --------------------------------------------------------------------------


class DropBN(nn.Module):
    """Linear -> Dropout -> BatchNorm1d -> ReLU -> Linear (dropout before BN), or BN -> ReLU -> Dropout."""

    def __init__(self, dropout_first):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 4)
        self.dropout_first = dropout_first

    def forward(self, x):
        h = self.fc1(x)
        if self.dropout_first:
            h = self.relu(self.bn(self.drop(h)))
        else:
            h = self.drop(self.relu(self.bn(h)))
        return self.fc2(h)


def to_inference_dropout(m):
    """What exporters that keep Dropout in inference graphs write (Keras converters, old model-zoo
    files): Dropout with training_mode false, BatchNormalization in inference mode."""
    false = onnx.helper.make_tensor("dropout_training_mode_false", onnx.TensorProto.BOOL, [], [False])
    m.graph.initializer.append(false)
    for n in m.graph.node:
        if n.op_type == "Dropout" and len(n.input) >= 3:
            n.input[2] = "dropout_training_mode_false"
        if n.op_type == "BatchNormalization":
            for a in list(n.attribute):
                if a.name == "training_mode":
                    n.attribute.remove(a)
            del n.output[1:]
    onnx.checker.check_model(m)
    return m


class BNNet(nn.Module):
    """Linear(16 -> 32) whose outputs have mean ~5 and std ~3, then BatchNorm1d, ReLU, Linear."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 4)
        with torch.no_grad():
            self.fc1.weight.mul_(3 * math.sqrt(3))  # default init has std 1/sqrt(3*16): x3 output std
            self.fc1.bias.fill_(5.0)

    def forward(self, x):
        return self.fc2(self.relu(self.bn(self.fc1(x))))


def calibrate_bn(model, data):
    """Running statistics from the data itself (cumulative average, as after enough training)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for chunk in torch.from_numpy(data).split(64):
            model(chunk)
    model.eval()
    return model


# --------------------------------------------------------------------------
# Recurrent weights (recurrent.spectral-radius)
# --------------------------------------------------------------------------


def scaled_to_radius(w, rho):
    ev = np.linalg.eigvals(w.detach().numpy().astype(np.float64))
    return w * (rho / float(np.max(np.abs(ev))))


def rnn_model(rho, seed):
    torch.manual_seed(seed)
    rnn = nn.RNN(16, 32, batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(scaled_to_radius(torch.randn(32, 32), rho))
    return rnn


class UnrolledRNN(nn.Module):
    """A Python loop over a tanh cell: traced, every step reuses the same weights."""

    def __init__(self, rho, steps=8):
        super().__init__()
        self.inp = nn.Linear(16, 32)
        self.hh = nn.Linear(32, 32, bias=False)
        self.out = nn.Linear(32, 4)
        self.steps = steps
        with torch.no_grad():
            self.hh.weight.copy_(scaled_to_radius(torch.randn(32, 32), rho))

    def forward(self, x):
        h = torch.zeros(x.shape[0], 32)
        for t in range(self.steps):
            h = torch.tanh(self.inp(x[:, t]) + self.hh(h))
        return self.out(h)


# --------------------------------------------------------------------------
# float16 range (numeric.fp16-range)
# --------------------------------------------------------------------------


class MaskedAttention(nn.Module):
    """Single-head causal attention with an additive mask constant, a LayerNorm, and a projection
    whose output scale is configurable."""

    def __init__(self, mask_value, eps, scale):
        super().__init__()
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.norm = nn.LayerNorm(D_MODEL, eps=eps)
        self.proj = nn.Linear(D_MODEL, D_MODEL)
        self.register_buffer("mask", torch.triu(torch.full((10, 10), mask_value), diagonal=1))
        with torch.no_grad():
            self.proj.weight.mul_(scale)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / math.sqrt(D_MODEL) + self.mask
        h = self.norm(x + torch.softmax(scores, dim=-1) @ v)
        return self.proj(h)


# --------------------------------------------------------------------------
# Input data (input.unnormalized, input.correlated)
# --------------------------------------------------------------------------


class SmallCNN(nn.Module):
    def __init__(self, normalize=None):
        super().__init__()
        if normalize is not None:
            mean, std = normalize
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.normalize = normalize is not None
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def tabular_mlp(d=8):
    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, 3))


def pixels(seed, n=32):
    """Smooth random 'images' in 0..255 with correlated RGB channels, like raw photos."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, (n, 1, 4, 4)).repeat(4, axis=2).repeat(4, axis=3)
    tint = rng.uniform(0.7, 1.0, (n, 3, 1, 1))
    noise = rng.uniform(-0.1, 0.1, (n, 3, 16, 16))
    return np.clip((base * tint + noise) * 255, 0, 255).astype(np.float32)


# --------------------------------------------------------------------------
# Bias and variance (fit.high-bias, fit.high-variance)
# --------------------------------------------------------------------------


def two_spirals(n, seed, noise=0.35):
    """Two interleaved spirals with label noise: no straight line separates them."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
    y = rng.integers(0, 2, n)
    r = t / (3 * math.pi) * 2
    angle = t + y * math.pi
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], 1) + rng.normal(0, noise * 0.3, (n, 2))
    return x.astype(np.float32), y.astype(np.int64)


def train_classifier(model, x, y, epochs, lr=0.01, seed=0, weight_decay=0.0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for idx in perm.split(32):
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) != yt).float().mean())


def mlp(d_in, width, depth, d_out=2):
    mods, d = [], d_in
    for _ in range(depth):
        mods += [nn.Linear(d, width), nn.ReLU()]
        d = width
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


# --------------------------------------------------------------------------
# Fixture table
# --------------------------------------------------------------------------


def fx_transformer(layers, norm_first, opset, final_norm=False):
    def build():
        torch.manual_seed(500 + layers)
        m = transformer(layers, norm_first, final_norm).eval()
        x = seq_input(1)
        return export(m, torch.from_numpy(x[:2]), opset=opset), {}
    return build


def fx_rms(layers, pre):
    def build():
        torch.manual_seed(600 + layers)
        m = RMSStack(layers, pre).eval()
        return export(m, torch.from_numpy(seq_input(2)[:2]), opset=17), {}
    return build


def fx_dropbn(dropout_first, mode):
    def build():
        torch.manual_seed(700)
        m = DropBN(dropout_first)
        calibrate_bn(m, np.random.default_rng(7).standard_normal((256, 16)).astype(np.float32))
        if mode == "eval":
            return export(m.eval(), torch.randn(4, 16)), {}
        m.train()
        onnx_model = export(m, torch.randn(4, 16), training=TrainingMode.TRAINING)
        if mode == "inference-dropout":
            onnx_model = to_inference_dropout(onnx_model)
        return onnx_model, {}
    return build


def fx_bn(calibrated):
    def build():
        torch.manual_seed(710)
        m = BNNet()
        probe = np.random.default_rng(71).standard_normal((64, 16)).astype(np.float32)
        if calibrated:
            calibrate_bn(m, np.random.default_rng(72).standard_normal((2048, 16)).astype(np.float32))
        m.eval()
        return export(m, torch.from_numpy(probe[:4])), {"probe": probe}
    return build


def fx_bn_bad_var():
    torch.manual_seed(720)
    m = BNNet()
    calibrate_bn(m, np.random.default_rng(73).standard_normal((512, 16)).astype(np.float32))
    with torch.no_grad():
        m.bn.running_var[3] = -0.5
        m.bn.running_var[7] = float("nan")
    m.eval()
    return export(m, torch.randn(4, 16)), {}


def fx_rnn(rho):
    def build():
        m = rnn_model(rho, 800).eval()
        return export(m, torch.randn(2, 10, 16), output_names=("output", "h")), {}
    return build


def fx_unrolled(rho):
    def build():
        torch.manual_seed(810)
        m = UnrolledRNN(rho).eval()
        return export(m, torch.randn(2, 8, 16)), {}
    return build


def fx_lstm():
    torch.manual_seed(820)
    m = nn.LSTM(16, 32, batch_first=True).eval()
    return export(m, torch.randn(2, 10, 16), output_names=("output", "h", "c")), {}


def fx_fp16(risky):
    def build():
        torch.manual_seed(900)
        m = MaskedAttention(-1e9 if risky else -1e4, 1e-12 if risky else 1e-5, 1e5 if risky else 1.0).eval()
        x = np.random.default_rng(90).standard_normal((8, 10, D_MODEL)).astype(np.float32)
        return export(m, torch.from_numpy(x[:2]), opset=14), {"probe": x}
    return build


def fx_pixels(kind):
    def build():
        torch.manual_seed(1000)
        mean, std = [0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255, 0.225 * 255]
        m = SmallCNN((mean, std) if kind == "in-model" else None).eval()
        x = pixels(100)
        if kind == "standardized":
            x = ((x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std(axis=(0, 2, 3), keepdims=True)).astype(np.float32)
        return export(m, torch.from_numpy(x[:2])), {"probe": x}
    return build


def fx_tabular(kind):
    def build():
        torch.manual_seed(1100)
        m = tabular_mlp().eval()
        rng = np.random.default_rng(110)
        n = 512
        z = rng.standard_normal((n, 8))
        if kind == "correlated":
            # Features 1-3 are nearly copies of feature 0 (as with height in cm, inches and shoe size).
            for j in (1, 2, 3):
                z[:, j] = z[:, 0] + 0.1 * rng.standard_normal(n)
            z = (z - z.mean(0)) / z.std(0)
        elif kind == "scales":
            z = z * np.array([1, 10, 100, 1000, 1, 0.01, 5, 50]) + np.array([0, 500, -20, 3000, 0, 0.5, 10, 100])
        return export(m, torch.from_numpy(z[:2].astype(np.float32))), {"probe": z.astype(np.float32)}
    return build


def fx_fit(kind):
    def build():
        x_train, y_train = two_spirals(60 if kind == "variance" else 1000, 120)
        x_val, y_val = two_spirals(1000, 121)
        torch.manual_seed(1200)
        if kind == "bias":
            m = mlp(2, 0, 0)  # logistic regression: a straight line cannot separate spirals
            train_classifier(m, x_train, y_train, epochs=60, lr=0.05)
        elif kind == "variance":
            m = mlp(2, 256, 3)
            train_classifier(m, x_train, y_train, epochs=600, lr=0.003)
        else:
            m = mlp(2, 64, 3)
            train_classifier(m, x_train, y_train, epochs=150, lr=0.01)
        m.eval()
        with torch.no_grad():
            errors = {name: float((m(torch.from_numpy(x)).argmax(1).numpy() != y).mean())
                      for name, (x, y) in (("trainError", (x_train, y_train)), ("valError", (x_val, y_val)))}
        return export(m, torch.from_numpy(x_train[:2])), {"train": (x_train, y_train), "val": (x_val, y_val), "fit": errors}
    return build


def fx_embedding(dominant):
    def build():
        torch.manual_seed(1300)
        emb = nn.Embedding(1000, 64)  # PyTorch's default: N(0, 1), so ||E||^2 ~ 64,000
        if not dominant:
            nn.init.normal_(emb.weight, std=0.02)  # BERT/GPT-style init
        m = nn.Sequential(emb, nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
        return export(m, torch.randint(0, 1000, (2, 5))), {}
    return build


FIXTURES = [
    # --- norm.post-norm ---
    dict(stem="transformer_postnorm_6", build=fx_transformer(6, False, 17),
         description="nn.TransformerEncoder, 6 layers, norm_first=False (Post-Norm), d_model 32, opset 17 (LayerNormalization op)",
         must=[("norm.post-norm", "warning")],
         architecture=dict(placement="post-norm", transformerLayers=6, dModel=32, normForm="op")),
    dict(stem="transformer_prenorm_6", build=fx_transformer(6, True, 17, final_norm=True),
         description="nn.TransformerEncoder, 6 layers, norm_first=True (Pre-Norm) + final LayerNorm, opset 17",
         must=[("norm.placement", "info")], quiet=["norm.post-norm"],
         architecture=dict(placement="pre-norm", transformerLayers=6, dModel=32, normForm="op")),
    dict(stem="transformer_postnorm_6_op14", build=fx_transformer(6, False, 14),
         description="as transformer_postnorm_6, opset 14: LayerNorm exported decomposed (ReduceMean/Sub/Pow/Sqrt/Div)",
         must=[("norm.post-norm", "warning")],
         architecture=dict(placement="post-norm", transformerLayers=6, dModel=32, normForm="decomposed")),
    dict(stem="transformer_prenorm_6_op14", build=fx_transformer(6, True, 14, final_norm=True),
         description="as transformer_prenorm_6, opset 14: decomposed LayerNorm",
         must=[("norm.placement", "info")], quiet=["norm.post-norm"],
         architecture=dict(placement="pre-norm", transformerLayers=6, dModel=32, normForm="decomposed")),
    dict(stem="transformer_postnorm_2", build=fx_transformer(2, False, 17),
         description="nn.TransformerEncoder, 2 layers, Post-Norm: shallow, so only the architecture info",
         must=[("norm.placement", "info")], quiet=["norm.post-norm"],
         architecture=dict(placement="post-norm", transformerLayers=2, dModel=32, normForm="op")),
    dict(stem="transformer_postnorm_double_norm", build=fx_transformer(2, False, 17, final_norm=True),
         description="2-layer Post-Norm encoder with a final LayerNorm (as nn.Transformer builds it): the last "
                     "norm2 feeds the final norm directly, two normalizations back to back",
         must=[("norm.post-norm", "info", "norm.post-norm/back-to-back")], quiet=["norm.post-norm"],
         architecture=dict(placement="post-norm", transformerLayers=2, dModel=32, normForm="op")),
    dict(stem="rmsnorm_prenorm_6", build=fx_rms(6, True),
         description="LLaMA-style stack: 6 blocks of attention + SiLU MLP, each with RMSNorm before the branch "
                     "(x * rsqrt(mean(x^2) + eps) * w, exported decomposed), final RMSNorm",
         must=[("norm.placement", "info")], quiet=["norm.post-norm"],
         architecture=dict(placement="pre-norm", transformerLayers=6, dModel=32, normForm="decomposed", normKind="rms")),
    dict(stem="rmsnorm_postnorm_6", build=fx_rms(6, False),
         description="the same blocks with RMSNorm after each residual Add (Post-Norm)",
         must=[("norm.post-norm", "warning")],
         architecture=dict(placement="post-norm", transformerLayers=6, dModel=32, normForm="decomposed", normKind="rms")),
    # --- dropout and BatchNorm ---
    dict(stem="dropout_before_bn", build=fx_dropbn(True, "training"),
         description="Linear -> Dropout(0.5) -> BatchNorm1d -> ReLU -> Linear, exported with TrainingMode.TRAINING",
         must=[("norm.dropout-before-bn", "warning"), ("export.training-mode", "error")]),
    dict(stem="dropout_before_bn_inference", build=fx_dropbn(True, "inference-dropout"),
         description="dropout_before_bn with Dropout's training_mode = false and BN in inference mode "
                     "(as exporters that keep inference Dropout nodes write it)",
         must=[("norm.dropout-before-bn", "warning")], quiet=["export.training-mode"]),
    dict(stem="dropout_after_bn", build=fx_dropbn(False, "training"),
         description="Linear -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear, TrainingMode.TRAINING: dropout after BN "
                     "(healthy order) but a training-mode export",
         must=[("export.training-mode", "error")], quiet=["norm.dropout-before-bn"]),
    dict(stem="dropout_bn_eval", build=fx_dropbn(False, "eval"),
         description="dropout_after_bn exported in eval mode: Dropout removed, BN in inference mode (healthy)",
         quiet=["export.training-mode", "norm.dropout-before-bn", "norm.bn-variance"]),
    dict(stem="bn_stale_stats", build=fx_bn(False),
         description="Linear(16->32, outputs mean 5, std ~3) -> BatchNorm1d with never-updated running stats "
                     "(mean 0, var 1) -> ReLU -> Linear; probe N(0,1)",
         must=[("norm.bn-variance", "warning")], probe=True),
    dict(stem="bn_calibrated", build=fx_bn(True),
         description="bn_stale_stats with running stats estimated on 2048 N(0,1) inputs (healthy)",
         quiet=["norm.bn-variance"], probe=True),
    dict(stem="bn_bad_running_var", build=fx_bn_bad_var,
         description="calibrated BNNet with running_var[3] = -0.5 and running_var[7] = NaN",
         must=[("norm.bn-variance", "error")]),
    # --- recurrent ---
    dict(stem="rnn_radius_1_5", build=fx_rnn(1.5),
         description="nn.RNN(16, 32, tanh) with weight_hh scaled to spectral radius 1.5",
         must=[("recurrent.spectral-radius", "warning")], radius=1.5),
    dict(stem="rnn_radius_0_9", build=fx_rnn(0.9),
         description="nn.RNN(16, 32, tanh) with weight_hh scaled to spectral radius 0.9 (healthy)",
         quiet=["recurrent.spectral-radius"], radius=0.9),
    dict(stem="rnn_unrolled_1_5", build=fx_unrolled(1.5),
         description="a Python loop over a tanh cell (8 steps, traced), hh weight with spectral radius 1.5",
         must=[("recurrent.spectral-radius", "warning")], radius=1.5),
    dict(stem="rnn_unrolled_0_9", build=fx_unrolled(0.9),
         description="the unrolled cell with spectral radius 0.9 (healthy)",
         quiet=["recurrent.spectral-radius"], radius=0.9),
    dict(stem="lstm_default", build=fx_lstm,
         description="nn.LSTM(16, 32), PyTorch default init: gated, so radii are reported, not warned",
         quiet=["recurrent.spectral-radius"]),
    # --- fp16 ---
    dict(stem="fp16_risky", build=fx_fp16(True),
         description="masked attention with mask constant -1e9, LayerNorm eps 1e-12 (opset 14, decomposed), and an "
                     "output projection scaled x1e5 (activations beyond 65504); analysed with --target fp16",
         must=[("numeric.fp16-range", "warning")], probe=True, options=dict(target="fp16"), input_layout="last"),
    dict(stem="fp16_safe", build=fx_fp16(False),
         description="the same with mask -1e4, eps 1e-5, unscaled projection; --target fp16 (healthy)",
         quiet=["numeric.fp16-range"], probe=True, options=dict(target="fp16"), input_layout="last"),
    # --- input data ---
    dict(stem="cnn_raw_pixels", build=fx_pixels("raw"),
         description="small CNN fed raw 0-255 pixels (no normalization anywhere)",
         must=[("input.unnormalized", "warning")], quiet=["input.correlated"], probe=True),
    dict(stem="cnn_standardized_pixels", build=fx_pixels("standardized"),
         description="the same CNN fed per-channel standardized pixels (healthy)",
         quiet=["input.unnormalized", "input.correlated"], probe=True),
    dict(stem="cnn_normalizes_inside", build=fx_pixels("in-model"),
         description="the CNN with (x - mean) / std (ImageNet constants x 255) as its first ops, fed raw 0-255 pixels: "
                     "the model normalizes its own input (healthy)",
         quiet=["input.unnormalized", "input.correlated"], probe=True),
    dict(stem="tabular_correlated", build=fx_tabular("correlated"),
         description="MLP on 8 standardized features where features 1-3 are noisy copies of feature 0 (r ~ 0.995)",
         must=[("input.correlated", "warning")], quiet=["input.unnormalized"], probe=True),
    dict(stem="tabular_independent", build=fx_tabular("independent"),
         description="the MLP on 8 independent N(0,1) features (healthy)",
         quiet=["input.unnormalized", "input.correlated"], probe=True),
    dict(stem="tabular_scales", build=fx_tabular("scales"),
         description="8 independent features with std from 0.01 to 1000 and means up to 3000",
         must=[("input.unnormalized", "warning")], quiet=["input.correlated"], probe=True),
    # --- bias / variance ---
    dict(stem="fit_high_variance", build=fx_fit("variance"),
         description="3x256 ReLU MLP trained 600 epochs on 60 noisy two-spiral points; validated on 1000",
         must=[("fit.high-variance", "warning")], quiet=["fit.high-bias"], fit=True),
    dict(stem="fit_high_bias", build=fx_fit("bias"),
         description="logistic regression (one Linear) on two spirals, 1000 training points",
         must=[("fit.high-bias", "warning")], quiet=["fit.high-variance"], fit=True),
    dict(stem="fit_just_right", build=fx_fit("right"),
         description="3x64 ReLU MLP trained on 1000 two-spiral points (healthy)",
         quiet=["fit.high-bias", "fit.high-variance"], fit=True),
    # --- regularization overview ---
    dict(stem="embedding_dominant", build=fx_embedding(True),
         description="nn.Embedding(1000, 64) with PyTorch's default N(0,1) init + 2 Linear: the table holds ~99.9% of "
                     "sum ||W||_F^2, so weight decay acts almost only on it",
         must=[("fit.regularization", "info", "fit.regularization")], quiet=["fit.high-variance"]),
    dict(stem="embedding_balanced", build=fx_embedding(False),
         description="the same with the table initialised N(0, 0.02) (healthy)",
         quiet=["fit.high-variance"], silent=["fit.regularization"]),
]


def input_stats(x, layout=None):
    """numpy's per-feature (rank 2), per-channel (NCHW) or last-axis statistics and PCA of the probe.
    `layout` ("channels" or "last") is what the model's first layer reads: a Conv reads channels,
    a MatMul/LayerNorm the last axis; without it the shape decides."""
    x = x.astype(np.float64)
    if x.ndim == 2:
        rows = x
    elif layout == "last":
        rows = x.reshape(-1, x.shape[-1])
    elif layout == "channels" or x.ndim == 4 or (x.ndim == 3 and x.shape[1] <= 16 and x.shape[1] < x.shape[-1]):
        rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    else:
        rows = x.reshape(-1, x.shape[-1])
    out = dict(mean=rows.mean(0).tolist(), std=rows.std(0).tolist())
    if 2 <= rows.shape[1] <= 256:
        c = rows - rows.mean(0)
        ev = np.sort(np.linalg.eigvalsh(c.T @ c / rows.shape[0]))[::-1]
        out["explainedVarianceRatio"] = (np.maximum(ev, 0) / np.maximum(ev, 0).sum()).tolist()
        out["maxAbsCorrelation"] = float(np.max(np.abs(np.corrcoef(rows.T) - np.eye(rows.shape[1]))))
    return out


def write_npz(path, x, y):
    np.savez(path, input=x, labels=y)


def linalg_oracle():
    """Matrices with numpy's eigenvalues: the oracle of src/stats/linalg.ts."""
    rng = np.random.default_rng(2024)
    cases = []
    mats = {
        "gauss16": rng.standard_normal((16, 16)) / 4,
        "gauss64": rng.standard_normal((64, 64)) / 8,
        "gauss128": rng.standard_normal((128, 128)) * 1.3 / math.sqrt(128),
        "rotation": np.array([[0.0, -1.2, 0.0], [1.2, 0.0, 0.0], [0.0, 0.0, 0.5]]),
        "triangular": np.triu(rng.standard_normal((8, 8))) + np.diag(np.linspace(0.1, 0.9, 8)),
    }
    for name, a in mats.items():
        np.save(os.path.join(OUT_DIR, f"linalg_{name}.npy"), a.astype(np.float64))
        cases.append(dict(file=f"linalg_{name}.npy", kind="general", spectralRadius=float(np.max(np.abs(np.linalg.eigvals(a))))))
    x = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6)) + rng.uniform(-3, 3, 6)
    np.save(os.path.join(OUT_DIR, "linalg_data.npy"), x.astype(np.float64))
    xc = x - x.mean(0)
    cov = xc.T @ xc / x.shape[0]
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    cases.append(dict(file="linalg_data.npy", kind="data", mean=x.mean(0).tolist(), covariance=cov.tolist(),
                      eigenvalues=ev.tolist(), explainedVarianceRatio=(ev / ev.sum()).tolist(),
                      conditionNumber=float(ev[0] / ev[-1])))
    with open(os.path.join(OUT_DIR, "linalg_oracle.json"), "w") as f:
        json.dump(dict(cases=cases), f, indent=1)
        f.write("\n")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    owned = (".onnx", ".probe.npy", ".train.npz", ".val.npz", ".expected.json")
    for fn in os.listdir(OUT_DIR):
        if fn.endswith(owned) or fn.startswith("linalg_"):
            os.remove(os.path.join(OUT_DIR, fn))
    linalg_oracle()
    for spec in FIXTURES:
        stem = spec["stem"]
        onnx_model, data = spec["build"]()
        with open(os.path.join(OUT_DIR, f"{stem}.onnx"), "wb") as f:
            f.write(onnx_model.SerializeToString())
        expected = dict(model=f"{stem}.onnx", description=spec["description"], options=spec.get("options", {}))
        if "probe" in data:
            np.save(os.path.join(OUT_DIR, f"{stem}.probe.npy"), data["probe"])
            expected["input"] = f"{stem}.probe.npy"
        if "probe" in data and data["probe"].dtype == np.float32:
            expected["inputStats"] = input_stats(data["probe"], spec.get("input_layout"))
        if "fit" in data:
            expected["fit"] = data["fit"]
        if "train" in data:
            write_npz(os.path.join(OUT_DIR, f"{stem}.train.npz"), *data["train"])
            write_npz(os.path.join(OUT_DIR, f"{stem}.val.npz"), *data["val"])
            expected["trainData"] = f"{stem}.train.npz"
            expected["valData"] = f"{stem}.val.npz"
        must = [dict(category=m[0], severity=m[1], **({"ruleId": m[2]} if len(m) > 2 else {})) for m in spec.get("must", [])]
        must_cats = {m["category"] for m in must if m["severity"] != "info"}
        quiet = spec.get("quiet", [])
        expected["must"] = must
        # Categories that must not be reported at warning or above: the lesson's own categories that
        # are not expected, plus those named quiet.
        expected["mustNotWarn"] = sorted({c for c in LESSON_CATEGORIES if c not in must_cats} | set(quiet))
        expected["silentRules"] = spec.get("silent", [])
        if "architecture" in spec:
            expected["architecture"] = spec["architecture"]
        if "radius" in spec:
            expected["spectralRadius"] = spec["radius"]
        with open(os.path.join(OUT_DIR, f"{stem}.expected.json"), "w") as f:
            json.dump(expected, f, indent=2, allow_nan=False)
            f.write("\n")
        print(f"{stem:34s} {len(onnx_model.graph.node):4d} nodes  must={[m['category'] + ':' + m['severity'] for m in must] or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
