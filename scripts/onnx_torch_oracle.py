#!/usr/bin/python3
"""Float64 PyTorch autograd of an ONNX model, interpreted op by op: an oracle for the backward
graph on real models that were not written in PyTorch here (Silero VAD micro).

    /usr/bin/python3 scripts/onnx_torch_oracle.py MODEL.onnx PROBE.npy OUT.json [SHAPE]

With a shape (2x4000) and no PROBE.npy yet, the probe is written first: float32 N(0,1), numpy seed 0.
The committed oracles of Silero VAD micro and mnist_cntk (test/fixtures/gradients/*.torch.json):

    R=../shared/models/real G=test/fixtures/gradients
    /usr/bin/python3 scripts/onnx_torch_oracle.py $R/silero_vad_micro_transformer_2021.onnx \
        $G/silero_micro.probe.npy $G/silero_micro.torch.json 2x4000
    /usr/bin/python3 scripts/onnx_torch_oracle.py $R/mnist_cntk.onnx $G/mnist_cntk.probe.npy $G/mnist_cntk.torch.json 1x1x28x28

Runs MODEL on PROBE (the first graph input; If nodes take the branch their condition picks, as the
doctor's probe does) with every float initializer and the input as float64 leaves, puts the
doctor's mse loss on the first output (L = mean(y^2)) and writes the loss and the l2 norm of
dL/d(tensor) for every float initializer, the input and every float intermediate tensor that
depends on them. Covers the ops of the models it is used on (an unknown op raises); Constant
nodes stay constants, as they are for the doctor's gradient check.
"""
import json, math, os, sys
import numpy as np, onnx, torch
from onnx import numpy_helper, helper
torch.set_default_dtype(torch.float64)

def attrs(n):
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}

def run_graph(g, env, opset, watched):
    for n in g.node:
        a = attrs(n)
        ins = [env[i] if i else None for i in n.input]
        t = n.op_type
        if t == "Constant":
            v = numpy_helper.to_array(a["value"])
            out = [torch.tensor(v.astype(np.float64)) if v.dtype.kind == "f" else torch.tensor(v)]
        elif t == "Shape": out = [torch.tensor(list(ins[0].shape), dtype=torch.int64)]
        elif t == "Gather":
            ax = a.get("axis", 0); ax = ax % ins[0].dim(); idx = ins[1].long(); idx = torch.where(idx < 0, idx + ins[0].shape[ax], idx)
            out = [torch.index_select(ins[0], ax, idx.reshape(-1)).reshape(list(ins[0].shape[:ax]) + list(idx.shape) + list(ins[0].shape[ax + 1:]))]
        elif t == "Unsqueeze":
            x = ins[0]
            axes = a["axes"] if "axes" in a else ins[1].tolist()
            r = x.dim() + len(axes)
            for ax in sorted(ax % r for ax in axes): x = x.unsqueeze(ax)
            out = [x]
        elif t == "Squeeze":
            x = ins[0]; axes = a.get("axes") if "axes" in a else (ins[1].tolist() if len(ins) > 1 else None)
            if axes is None: out = [x.squeeze()]
            else:
                for ax in sorted((ax % x.dim() for ax in axes), reverse=True): x = x.squeeze(ax)
                out = [x]
        elif t == "Concat": out = [torch.cat(ins, a["axis"])]
        elif t == "Reshape":
            shape = ins[1].tolist(); shape = [ins[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            out = [ins[0].reshape(shape)]
        elif t == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            dt = torch.float64 if v.dtype.kind == "f" else torch.int64
            out = [torch.full(ins[0].tolist(), float(v.reshape(-1)[0]), dtype=dt)]
        elif t == "Slice":
            x = ins[0]
            if "starts" in a:  # opset < 10: attributes
                starts, ends = a["starts"], a["ends"]
                axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
            else:
                starts, ends = ins[1].tolist(), ins[2].tolist()
                axes = ins[3].tolist() if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
                steps = ins[4].tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            idx = [slice(None)] * x.dim()
            for s, e, ax, st in zip(starts, ends, axes, steps):
                d = x.shape[ax]
                if st > 0:
                    s = max(min(s + d if s < 0 else s, d), 0); e = max(min(e + d if e < 0 else e, d), 0)
                    idx[ax] = torch.arange(s, e, st)
                else:
                    s = max(min(s + d if s < 0 else s, d - 1), -1); e = max(min(e + d if e < 0 else e, d - 1), -1)
                    idx[ax] = torch.arange(s, e, st)
            for ax, ix in enumerate(idx):
                if not isinstance(ix, slice): x = torch.index_select(x, ax, ix)
            out = [x]
        elif t == "Transpose": out = [ins[0].permute(a.get("perm", list(range(ins[0].dim() - 1, -1, -1))))]
        elif t == "Cast":
            to = a["to"]
            out = [ins[0].to(torch.float64) if to in (1, 11, 10) else ins[0].to(torch.int64) if to in (6, 7) else ins[0].to(torch.bool) if to == 9 else None]
        elif t == "Pad":
            mode = a.get("mode", b"constant").decode(); pads = ins[1].tolist(); r = ins[0].dim()
            x = ins[0]
            # torch pads last axis first: (last_begin, last_end, ...); only the last axes may be padded
            tp = []
            for ax in range(r - 1, -1, -1): tp += [pads[ax], pads[r + ax]]
            while len(tp) > 2 and tp[-1] == 0 and tp[-2] == 0: tp = tp[:-2]
            nlead = r - len(tp) // 2
            if mode == "reflect":
                shp = x.shape
                y = torch.nn.functional.pad(x.reshape((-1,) + tuple(shp[nlead:])).unsqueeze(1) if nlead >= 1 else x, tp, mode="reflect")
                out = [y.reshape(tuple(shp[:nlead]) + tuple(y.shape[2:]))]
            else: out = [torch.nn.functional.pad(x, tp, mode="constant", value=float(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0)]
        elif t == "If":
            branch = a["then_branch"] if bool(ins[0].reshape(-1)[0]) else a["else_branch"]
            sub = dict(env); run_graph(branch, sub, opset, watched)
            out = [sub[o.name] for o in branch.output]
        elif t == "Conv":
            x, w = ins[0], ins[1]; b = ins[2] if len(ins) > 2 else None
            k = w.dim() - 2; pads = a.get("pads", [0] * 2 * k)
            if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER"):
                assert all(s == 1 for s in a.get("strides", [1] * k)) and all(d % 2 == 1 for d in w.shape[2:])
                pads = [d // 2 for d in w.shape[2:]] * 2
            assert pads[:k] == pads[k:]
            f = [None, torch.nn.functional.conv1d, torch.nn.functional.conv2d][k]
            out = [f(x, w, b, stride=a.get("strides", [1] * k), padding=pads[:k], dilation=a.get("dilations", [1] * k), groups=a.get("group", 1))]
        elif t == "MaxPool":
            k = len(a["kernel_shape"]); pads = a.get("pads", [0] * 2 * k)
            assert a.get("auto_pad", b"NOTSET") == b"NOTSET" and pads[:k] == pads[k:] and len(n.output) == 1
            f = [None, torch.nn.functional.max_pool1d, torch.nn.functional.max_pool2d][k]
            out = [f(ins[0], a["kernel_shape"], a.get("strides", [1] * k), pads[:k], ceil_mode=bool(a.get("ceil_mode", 0)))]
        elif t == "BatchNormalization":
            x, sc, b, mean, var = ins[:5]
            shape = [1, -1] + [1] * (x.dim() - 2)
            out = [(x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + a.get("epsilon", 1e-5)) * sc.reshape(shape) + b.reshape(shape)]
        elif t == "Clip":
            lo = a.get("min", float(ins[1]) if len(ins) > 1 and ins[1] is not None else None)
            hi = a.get("max", float(ins[2]) if len(ins) > 2 and ins[2] is not None else None)
            out = [torch.clamp(ins[0], lo, hi)]
        elif t == "HardSigmoid": out = [torch.clamp(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0, 1)]
        elif t == "Pow": out = [torch.pow(ins[0], ins[1])]
        elif t == "Add": out = [ins[0] + ins[1]]
        elif t == "Sub": out = [ins[0] - ins[1]]
        elif t == "Mul": out = [ins[0] * ins[1]]
        elif t == "Div": out = [ins[0] / ins[1] if ins[0].is_floating_point() else torch.div(ins[0], ins[1], rounding_mode="trunc")]
        elif t == "Sqrt": out = [torch.sqrt(ins[0])]
        elif t == "Log": out = [torch.log(ins[0])]
        elif t == "Neg": out = [-ins[0]]
        elif t == "Relu": out = [torch.relu(ins[0])]
        elif t == "Sigmoid": out = [torch.sigmoid(ins[0])]
        elif t == "Tanh": out = [torch.tanh(ins[0])]
        elif t == "MatMul": out = [torch.matmul(ins[0], ins[1])]
        elif t == "Gemm":
            A = ins[0].T if a.get("transA", 0) else ins[0]; B = ins[1].T if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * A @ B
            if len(ins) > 2 and ins[2] is not None: y = y + a.get("beta", 1.0) * ins[2]
            out = [y]
        elif t == "Softmax":
            ax = a.get("axis", 1 if opset < 13 else -1)
            assert opset >= 13 or ax % ins[0].dim() == ins[0].dim() - 1
            out = [torch.softmax(ins[0], ax)]
        elif t == "ReduceMean":
            axes = a.get("axes"); kd = bool(a.get("keepdims", 1))
            out = [ins[0].mean(dim=axes, keepdim=kd) if axes is not None else ins[0].mean()]
        elif t == "GlobalAveragePool": out = [ins[0].mean(dim=list(range(2, ins[0].dim())), keepdim=True)]
        elif t == "Equal": out = [ins[0] == ins[1]]
        elif t == "Identity": out = [ins[0]]
        elif t == "Split":
            ax = a.get("axis", 0); split = a.get("split") or [ins[0].shape[ax] // len(n.output)] * len(n.output)
            out = list(torch.split(ins[0], split, ax))
        else: raise NotImplementedError(t)
        for name, v in zip(n.output, out):
            env[name] = v
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.requires_grad:
                v.retain_grad()
                watched[name] = v

def main():
    path, inp, out_path = sys.argv[1:4]
    if len(sys.argv) > 4 and not os.path.exists(inp):
        shape = tuple(int(d) for d in sys.argv[4].split("x"))
        np.save(inp, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    m = onnx.load(path)
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    env, params, watched = {}, {}, {}
    for t in m.graph.initializer:
        v = numpy_helper.to_array(t)
        if v.dtype.kind == "f":
            p = torch.tensor(v.astype(np.float64), requires_grad=True)
            params[t.name] = p
            env[t.name] = p
        else:
            env[t.name] = torch.tensor(v)
    probe = np.load(inp)
    x = torch.tensor(probe.astype(np.float64), requires_grad=True)
    inputs = [i.name for i in m.graph.input if i.name not in env]
    env[inputs[0]] = x
    params[inputs[0]] = x
    run_graph(m.graph, env, opset, watched)
    y = env[m.graph.output[0].name]
    loss = (y ** 2).mean()
    loss.backward()
    def l2(t):
        # None where torch's gradient is not finite (a Pow exponent over negative bases: x^2 log x).
        v = math.sqrt(float((t.grad ** 2).sum())) if t.grad is not None else 0.0
        return v if math.isfinite(v) else None
    json.dump({
        "model": os.path.basename(path), "probe": os.path.basename(inp), "shape": list(probe.shape),
        "loss": {"name": "mse", "definition": "mean(y^2) of the first output", "value": loss.item()},
        "parameters": {k: l2(v) for k, v in params.items()},
        "tensors": {k: l2(v) for k, v in watched.items()},
    }, open(out_path, "w"), indent=1, sort_keys=True)
    print(f"loss {loss.item()}: {len(params)} parameters, {len(watched)} tensors -> {out_path}")


if __name__ == "__main__":
    main()
