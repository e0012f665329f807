import type { ConstTensor, GraphNode, Model } from "../onnx/model";

/**
 * BatchNorms that have never seen training data: running mean 0 and running variance 1, as
 * PyTorch creates them. In eval mode such a BatchNorm is an identity (up to gamma and beta), so a
 * freshly built model exported in eval mode is measured without its normalization, while in
 * training every BatchNorm renormalises its layer with the batch's own statistics (the seed:
 * BatchNorm makes each layer's scale independent of the weights before it). Findings about the
 * scale of activations and gradients over depth then describe the export, not training.
 */

/** Every element equals `value` (a ConstantOfShape fill, or decoded values). */
function allEqual(t: ConstTensor | undefined, value: number): boolean {
  if (!t) return false;
  if (t.fill !== undefined) return t.fill === value;
  try {
    return t.values().every((v) => v === value);
  } catch {
    return false;
  }
}

/**
 * A BatchNormalization node as PyTorch creates it: running mean 0, running variance 1, gamma 1,
 * beta 0. (A trained gamma or beta with fresh running statistics is another matter: norm.bn-variance.)
 */
export function isFreshBatchNorm(model: Model, node: GraphNode): boolean {
  const c = (i: number): ConstTensor | undefined => model.constants.get(node.inputs[i]);
  return node.opType === "BatchNormalization" && allEqual(c(1), 1) && allEqual(c(2), 0) && allEqual(c(3), 0) && allEqual(c(4), 1);
}

/**
 * A convolution into which torch.onnx's constant folding merged a fresh BatchNorm: folding gives
 * the conv a bias (mean - running_mean) * gamma / sqrt(var + eps) + beta, which is exactly zero for
 * a fresh one, and renames both tensors `onnx::Conv_<n>` (parameters keep their module names
 * otherwise). A conv exported with its own zero bias and no folding keeps `conv.bias`.
 */
export function hasFoldedFreshBatchNorm(node: GraphNode, weight: ConstTensor | undefined, bias: ConstTensor | undefined): boolean {
  return looksFolded(node, weight, bias) && allEqual(bias, 0);
}

/** A conv whose weight and bias torch.onnx's constant folding renamed `onnx::Conv_<n>`, as it does when it folds a BatchNorm in. */
export function looksFolded(node: GraphNode, weight: ConstTensor | undefined, bias: ConstTensor | undefined): boolean {
  const folded = (t: ConstTensor | undefined): boolean => !!t && t.name.startsWith("onnx::Conv_");
  return node.opType === "Conv" && folded(weight) && folded(bias);
}

/**
 * The layer normalises its pre-activations with a fresh BatchNorm: folded into it by the export,
 * or the layer is that BatchNorm. In eval mode the BatchNorm does not centre them, in training it does.
 */
export function layerHasFreshBatchNorm(model: Model, layer: { readonly foldedFreshNorm: boolean; readonly node: GraphNode }): boolean {
  return layer.foldedFreshNorm || isFreshBatchNorm(model, layer.node);
}
