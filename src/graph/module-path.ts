/**
 * The PyTorch module path of a node, from the scope that torch.onnx writes into node names:
 * `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`, `/encoder/layers.0/self_attn/MatMul` ->
 * `encoder.layers.0.self_attn`. A Sequential's children repeat the Sequential's own segment
 * (`/layer2/layer2.0/downsample/downsample.0/Conv` -> `layer2.0.downsample.0`), so a segment that
 * extends the previous segment replaces it; one that extends the whole path so far replaces that.
 */
export function modulePathFromNodeName(nodeName: string): string | undefined {
  if (!nodeName.startsWith("/")) return undefined;
  const segments = nodeName.split("/").filter(Boolean);
  segments.pop(); // the op itself, e.g. "Conv" or "Gemm_1"
  const parts: string[] = [];
  for (const s of segments) {
    if (parts.length && s.startsWith(`${parts.join(".")}.`)) parts.splice(0, parts.length, s);
    else if (parts.length && s.startsWith(`${parts[parts.length - 1]}.`)) parts[parts.length - 1] = s;
    else parts.push(s);
  }
  return parts.join(".") || undefined;
}

/** `layers.0.weight` -> `layers.0`; exporters that keep parameter names give the module this way. */
export function modulePathFromWeightName(weight: string): string | undefined {
  const m = /^(.+)\.(weight|bias|weight_orig|kernel)$/.exec(weight);
  return m && !m[1].startsWith("onnx::") ? m[1] : undefined;
}
