import type { GraphIndex } from "../graph/index";
import { endsBlockBranch, type ResidualBlock } from "../graph/residual";
import { WEIGHT_OPS, type Layer } from "../graph/layers";
import type { Finding } from "../report/types";
import type { Rule } from "./rule";
import { layerTitle } from "./rule";


/**
 * All-zero weights. With zero weights every unit of a layer computes the same output and gets
 * the same gradient (symmetry is never broken); for ReLU nets nothing upstream learns at all.
 * Some zeros are deliberate: a LoRA B matrix, the last layer of a residual branch (so the block
 * starts as the identity), or an output/single layer (whose inputs already differ).
 */
export const initZero: Rule = {
  id: "init.zero",
  needsProbe: false,
  check: ({ layers, reports, index, architecture }) => {
    const findings: Finding[] = [];
    for (const layer of layers) {
      const w = reports[layer.id].weight;
      if (!w || w.zeroFraction < 1 || layer.kind === "embedding") continue;
      const reason = intentionalReason(layer, layers, index, architecture?.blocks ?? []);
      const base = { ruleId: "init.zero", category: "init.zero" as const, layer: layer.name, node: layer.node.name, tensor: w.tensor };
      if (layer.kind === "norm") {
        findings.push({
          ...base, ruleId: reason ? "init.zero/residual-gamma" : "init.zero/gamma",
          severity: reason ? "info" : "warning",
          message: reason
            ? `${layerTitle(layer)}: the scale (gamma) is all zero; ${reason}, so the block starts as the identity (zero-init residual, expected).`
            : `${layerTitle(layer)}: the normalization scale (gamma) is all zero, so this layer outputs only its bias and passes no gradient to earlier layers.`,
          evidence: { zeroFraction: 1, elements: w.shape.reduce((a, b) => a * b, 1) },
          fix: reason ? "Nothing to do if this is a freshly initialised model." : "Initialise gamma to 1 (PyTorch's default) unless this is the last normalization of a residual branch.",
        });
        continue;
      }
      findings.push({
        ...base,
        ruleId: reason ? "init.zero/intentional" : "init.zero",
        severity: reason ? "info" : "error",
        message: reason
          ? `${layerTitle(layer)}: all-zero weights; ${reason}, expected at initialization.`
          : `${layerTitle(layer)}: all ${w.shape.reduce((a, b) => a * b, 1)} weights are zero, so every unit ignores its input${layer.bias ? " (it outputs its bias)" : " and outputs the same value"} and every unit's weights receive the same gradient up to a per-unit factor; the units never learn different features (symmetry is not broken).`,
        evidence: { zeroFraction: 1, fanIn: w.fanIn, fanOut: w.fanOut },
        fix: reason ? "Nothing to do if this is a freshly initialised model." : "Initialise with random weights: He, std = sqrt(2/fan_in), before ReLU; Xavier, std = sqrt(2/(fan_in+fan_out)), before tanh.",
      });
    }
    return findings;
  },
};

function intentionalReason(layer: Layer, layers: readonly Layer[], index: GraphIndex, blocks: readonly ResidualBlock[]): string | undefined {
  const names = `${layer.name} ${layer.weight?.name ?? ""}`;
  if (/lora[._-]?b\b|lora_b|lora_up/i.test(names)) return "a LoRA B matrix";
  if (isLowRankUp(layer, index)) return "a LoRA-style low-rank up-projection (B matrix)";
  if (endsBlockBranch(layer, blocks, index)) return "it is the last layer of a residual branch";
  if (layers.filter((l) => l.kind !== "norm").length === 1) return "it is the only layer (a linear model)";
  if (layer.kind !== "norm" && layer.isOutputLayer) return "it is the output layer";
  return undefined;
}

/** A projection from a rank far below its output width, fed by another projection: LoRA's B. */
function isLowRankUp(layer: Layer, index: GraphIndex): boolean {
  if (layer.fanIn === undefined || layer.fanOut === undefined) return false;
  if (!(layer.fanIn <= 64 && layer.fanIn * 4 <= layer.fanOut)) return false;
  const producer = index.producer.get(layer.node.inputs.find((i) => !index.isConstant(i)) ?? "");
  return !!producer && WEIGHT_OPS.has(producer.opType);
}
