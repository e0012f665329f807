/**
 * The PyTorch module path of a node, from the scope that torch.onnx writes into node names:
 * `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`, `/encoder/layers.0/self_attn/MatMul` ->
 * `encoder.layers.0.self_attn`. Nested Sequential scopes repeat their parent's prefix, so a
 * segment that starts with the path so far replaces it instead of being appended.
 */
export function modulePathFromNodeName(nodeName: string): string | undefined {
  if (!nodeName.startsWith("/")) return undefined;
  const segments = nodeName.split("/").filter(Boolean);
  segments.pop(); // the op itself, e.g. "Conv" or "Gemm_1"
  let path = "";
  for (const s of segments) path = path && !s.startsWith(`${path}.`) ? `${path}.${s}` : s;
  return path || undefined;
}

/** `layers.0.weight` -> `layers.0`; exporters that keep parameter names give the module this way. */
export function modulePathFromWeightName(weight: string): string | undefined {
  const m = /^(.+)\.(weight|bias|weight_orig|kernel)$/.exec(weight);
  return m && !m[1].startsWith("onnx::") ? m[1] : undefined;
}
