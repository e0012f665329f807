import type { Model } from "../onnx/model";
import type { Finding } from "../report/types";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/** Largest finite float16 value. */
export const FP16_MAX = 65504;
/** Smallest positive float16 (subnormal) value: anything below half of it rounds to 0. */
export const FP16_MIN_SUBNORMAL = 2 ** -24;

/** A model whose weights are mostly float16 runs in float16 whatever the target says. */
export function isFloat16Model(model: Model): boolean {
  let half = 0;
  let other = 0;
  for (const t of model.constants.values()) {
    if (t.size < 16) continue;
    if (t.dtype === "float16") half += t.size;
    else if (t.dtype === "float32" || t.dtype === "float64") other += t.size;
  }
  return half > other;
}

/**
 * float16 holds magnitudes up to 65504 and nothing below 6e-8. A float32 model converted to
 * float16 (or run with autocast) turns larger constants into Inf (an additive attention mask of
 * -1e9 becomes -Inf, and a fully masked row then gives NaN), rounds a normalization's tiny epsilon
 * to 0 (division by zero on a constant row), and overflows activations beyond 65504 to Inf.
 * Runs for float16 models and for `--target fp16`.
 */
export const numericFp16Range: Rule = {
  id: "numeric.fp16-range",
  needsProbe: false,
  check: ({ model, target, architecture, layers, reports }) => {
    const fp16Model = isFloat16Model(model);
    if (target !== "fp16" && !fp16Model) return [];
    const findings: Finding[] = [];
    const why = fp16Model ? "this float16 model" : "float16 (--target fp16)";

    const big: { name: string; count: number; extreme: number; size: number }[] = [];
    for (const t of model.constants.values()) {
      if ((t.dtype !== "float32" && t.dtype !== "float64") || t.source === "Identity" || t.source === "Cast") continue;
      let values: ArrayLike<number>;
      try {
        values = t.fill !== undefined ? [t.fill] : t.values();
      } catch {
        continue;
      }
      let count = 0;
      let extreme = 0;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (Number.isFinite(v) && Math.abs(v) > FP16_MAX) {
          count++;
          if (Math.abs(v) > Math.abs(extreme)) extreme = v;
        }
      }
      if (count) big.push({ name: t.name, count: t.fill !== undefined ? t.size : count, extreme, size: t.size });
    }
    if (big.length) {
      big.sort((a, b) => Math.abs(b.extreme) - Math.abs(a.extreme));
      const maskLike = big.some((b) => b.extreme <= -1e6);
      findings.push({
        ruleId: "numeric.fp16-range/constant", category: "numeric.fp16-range", severity: "warning", tensor: big[0].name,
        message: `${big.length} constant(s) hold values beyond the float16 range ±${FP16_MAX}, which become ±Inf in ${why}: ${big.slice(0, 4).map((b) => `${b.name} (${b.count} of ${b.size}, e.g. ${fmt(b.extreme)})`).join(", ")}${big.length > 4 ? ", …" : ""}.${maskLike ? " A large negative additive mask turns into -Inf; a row that is masked everywhere then gives Inf - Inf = NaN in the softmax." : ""}`,
        evidence: { tensors: big.length, largest: big[0].extreme },
        fix: maskLike
          ? "Use a mask value float16 can hold, e.g. torch.finfo(dtype).min or -1e4, instead of -1e9 (or masked_fill with -inf only where a row keeps at least one position)."
          : "Rescale these constants (fold the scale into the next layer), or keep the ops that use them in float32.",
      });
    }

    for (const norm of architecture?.norms ?? []) {
      if (norm.form !== "decomposed" || norm.epsilon === undefined || norm.epsilon >= FP16_MIN_SUBNORMAL / 2) continue;
      // An epsilon of 0 in a float16 model is one that already underflowed in the conversion.
      if (!(norm.epsilon > 0) && !(fp16Model && norm.epsilonTensor?.dtype === "float16")) continue;
      findings.push({
        ruleId: "numeric.fp16-range/epsilon", category: "numeric.fp16-range", severity: "warning", layer: norm.module, node: norm.node, tensor: norm.epsilonTensor?.name,
        message: `${norm.module ?? norm.node} (${norm.label}): epsilon ${fmt(norm.epsilon)} rounds to 0 in ${why} (the smallest float16 is ${fmt(FP16_MIN_SUBNORMAL)}), so a constant row divides by sqrt(0) and gives Inf/NaN.`,
        evidence: { epsilon: norm.epsilon, smallestFloat16: FP16_MIN_SUBNORMAL },
        fix: "Use eps >= 1e-5 (nn.LayerNorm's default) or keep the normalization in float32 (most float16 converters have a block list for LayerNorm).",
      });
    }

    const overflow = layers.filter((l) => {
      const a = reports[l.id].activation;
      return a && Math.max(Math.abs(a.max), Math.abs(a.min)) > FP16_MAX && a.nonFinite === 0;
    });
    if (overflow.length && !fp16Model) {
      const worst = overflow.map((l) => ({ l, m: Math.max(Math.abs(reports[l.id].activation!.max), Math.abs(reports[l.id].activation!.min)) })).sort((a, b) => b.m - a.m);
      findings.push({
        ruleId: "numeric.fp16-range/activation", category: "numeric.fp16-range", severity: "warning", layer: worst[0].l.name, node: worst[0].l.node.name, tensor: reports[worst[0].l.id].activation!.tensor,
        message: `${overflow.length} layer output(s) exceed ±${FP16_MAX} on the probe and would overflow to Inf in float16: ${worst.slice(0, 4).map((w) => `${w.l.name} (max |a| ${fmt(w.m)})`).join(", ")}${worst.length > 4 ? ", …" : ""}.`,
        evidence: { layers: overflow.length, maxAbs: worst[0].m, float16Max: FP16_MAX },
        fix: "Scale these activations down (smaller weights, a normalization before them), or keep these layers in float32; with mixed precision training, use a loss scaler and bf16 where possible.",
      });
    }
    return findings;
  },
};
