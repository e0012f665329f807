import type { Model } from "../onnx/model";
import { GraphIndex } from "./index";
import { modulePathFromNodeName } from "./module-path";

/**
 * Identity copies of a constant that are reuses of one parameter, each mapped to the constant it
 * copies.
 *
 * torch.onnx reads one initializer through anonymous Identity copies (`onnx::MatMul_28`) in two
 * situations: a module called several times (ALBERT-style sharing, a Python loop over an RNN cell),
 * whose parameter's gradient is the sum over its uses; and distinct parameters that happened to be
 * equal (constant-initialized layers), which the exporter merged and whose gradients stay separate.
 * Node scopes tell them apart: torch names the k-th call of module `shared` `/shared_k/`, so the
 * copies are reuses when every use lies in one module up to those suffixes, the first call's
 * unsuffixed scope among them. A copy with a name of its own (`bn2.weight`) is always a parameter
 * of its own, and so is one whose users carry no scope (nothing says they are one module).
 */
export function sharedParameterCopies(model: Model, index = new GraphIndex(model)): Map<string, string> {
  const anonymous = (t: string): boolean => t.startsWith("onnx::");
  const rootOf = (t: string): string => {
    for (let p = index.producer.get(t); p?.opType === "Identity" && anonymous(t) && model.constants.has(p.inputs[0]); p = index.producer.get(t)) t = p.inputs[0];
    return t;
  };
  const copies = new Map<string, string[]>();
  for (const n of model.nodes) {
    const out = n.outputs[0];
    if (n.opType !== "Identity" || !out || !anonymous(out) || !model.constants.has(n.inputs[0])) continue;
    const root = rootOf(out);
    copies.set(root, [...(copies.get(root) ?? []), out]);
  }
  const reuses = new Map<string, string>();
  for (const [root, list] of copies) {
    const paths = [root, ...list].flatMap((t) => index.consumersOf(t).filter((c) => c.opType !== "Identity")).map((c) => modulePathFromNodeName(c.name));
    if (paths.length < 2 || paths.some((p) => p === undefined)) continue;
    const distinct = [...new Set(paths as string[])];
    if (distinct.some((first) => distinct.every((p) => isLaterCall(p, first)))) for (const c of list) reuses.set(c, root);
  }
  return reuses;
}

/** Whether module path `p` is `first` or a later call of it (`shared_2`, `layers.0.attn_1`). */
function isLaterCall(p: string, first: string): boolean {
  const a = p.split(".");
  const b = first.split(".");
  return a.length === b.length && a.every((s, i) => s === b[i] || (s.startsWith(`${b[i]}_`) && /^\d+$/.test(s.slice(b[i].length + 1))));
}
