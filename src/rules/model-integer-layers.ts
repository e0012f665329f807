import type { Rule } from "./rule";

/** Ops that apply integer weights directly, which the layer finder does not treat as layers. */
const INTEGER_WEIGHT_OPS = new Set(["QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "MatMulNBits", "QGemm", "DynamicQuantizeMatMul"]);

/**
 * Quantized operator-format models (QOperator: QLinearConv, MatMulInteger, ...) keep their weights
 * as integers inside the layer op. The weight rules read float weights and DequantizeLinear (QDQ)
 * ones, so without this note such a model reads "0 layers, no problems" and nothing says why.
 */
export const modelIntegerLayers: Rule = {
  id: "model.unsupported/integer-layers",
  needsProbe: false,
  check: ({ model }) => {
    const counts = new Map<string, number>();
    for (const n of model.nodes) if (INTEGER_WEIGHT_OPS.has(n.opType)) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
    if (counts.size === 0) return [];
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const list = [...counts].map(([op, k]) => `${op} ×${k}`).join(", ");
    return [{
      ruleId: "model.unsupported/integer-layers", category: "model.unsupported", severity: "info",
      message: `${total} node(s) compute with integer weights inside the op (${list}): they are not layers in this report, so their weights are not checked and their outputs get no per-layer statistics. Layers in QDQ form (DequantizeLinear before Conv/MatMul) are analysed in full.`,
      evidence: Object.fromEntries(counts),
      fix: "To have these layers checked, analyse the float model, or quantize in QDQ format (onnxruntime.quantization: quant_format=QuantFormat.QDQ).",
    }];
  },
};
