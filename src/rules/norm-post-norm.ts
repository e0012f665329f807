import { summarizeArchitecture, transformerBlocks } from "../graph/architecture";
import type { GraphIndex } from "../graph/index";
import { normTitle, type NormMatch } from "../graph/norms";
import type { Finding } from "../report/types";
import type { Rule } from "./rule";

/**
 * Post-Norm stacks at least this deep get a warning. The original Transformer (6 layers, Post-Norm)
 * already needed learning-rate warm-up; Xiong et al. (2020) show Post-Norm training diverging
 * without it at that depth, while Pre-Norm trains without warm-up.
 */
export const POST_NORM_DEEP_LAYERS = 6;

const TRANSPARENT = new Set(["Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Dropout", "Flatten"]);

/**
 * The seed's Pre-Norm vs Post-Norm lesson. Post-Norm (LN(x + f(x)), the original Transformer,
 * BERT) puts every residual path through a normalization, so in a deep stack the identity term of
 * output = x + g(x) no longer reaches the early layers intact and training needs learning-rate
 * warm-up; Pre-Norm (x + f(LN(x)), GPT, LLaMA) keeps a clean identity path and trains without it.
 * Reports the architecture as info, warns for deep Post-Norm stacks, and notes normalizations
 * applied back to back (the second re-normalizes what is already normalized).
 */
export const normPostNorm: Rule = {
  id: "norm.post-norm",
  needsProbe: false,
  check: ({ architecture, index }) => {
    if (!architecture) return [];
    const findings: Finding[] = [];
    const s = summarizeArchitecture(architecture);
    const blocks = transformerBlocks(architecture);
    if (s.transformerLayers > 0) {
      const first = blocks.find((b) => b.placement === "post-norm") ?? blocks[0];
      const why = s.placement === "post-norm"
        ? "Post-Norm (as in the original Transformer and BERT) normalizes after each residual Add, LN(x + f(x)); Pre-Norm (GPT, LLaMA) normalizes inside the branch, x + f(LN(x)), and keeps an identity path through the whole stack."
        : s.placement === "pre-norm"
          ? "Pre-Norm normalizes inside each branch, x + f(LN(x)), so the residual stream keeps an identity path through the stack; it trains stably without learning-rate warm-up."
          : s.placement === "mixed"
            ? "Some blocks normalize before their branch (Pre-Norm) and some after the residual Add (Post-Norm)."
            : "No normalization was found at the start of the branches or after the residual Adds.";
      findings.push({
        ruleId: "norm.placement", category: "norm.placement", severity: "info", layer: first.module, node: first.join.name,
        message: `Architecture: ${s.text}. ${why}`,
        evidence: { transformerLayers: s.transformerLayers, postNormLayers: s.postNormLayers, preNormLayers: s.preNormLayers, dModel: s.dModel, placement: s.placement },
        fix: "Nothing to do; this describes the model.",
      });
      if (s.postNormLayers >= POST_NORM_DEEP_LAYERS) {
        findings.push({
          ruleId: "norm.post-norm", category: "norm.post-norm", severity: "warning", layer: first.module, node: first.join.name,
          message: `${s.postNormLayers} stacked Post-Norm transformer layers (${first.postNorm ? normTitle(first.postNorm) : "normalization"} after the residual Add${s.dModel ? `, d_model ${s.dModel}` : ""}): with the normalization on the residual path, the identity term of x + f(x) fades over depth, gradients near the input are poorly scaled at the start of training, and Post-Norm stacks of ${POST_NORM_DEEP_LAYERS}+ layers need learning-rate warm-up to train at all.`,
          evidence: { postNormLayers: s.postNormLayers, transformerLayers: s.transformerLayers, dModel: s.dModel, threshold: POST_NORM_DEEP_LAYERS },
          fix: "Train with a learning-rate warm-up (e.g. linear over the first few thousand steps), or switch to Pre-Norm (PyTorch: nn.TransformerEncoderLayer(..., norm_first=True) plus a final LayerNorm), which trains without warm-up.",
        });
      }
    }
    findings.push(...backToBack(architecture.norms, index));
    return findings;
  },
};

/** A normalization whose input is another normalization's output (through reshapes only). */
function backToBack(norms: readonly NormMatch[], index: GraphIndex): Finding[] {
  const byOutput = new Map(norms.map((n) => [n.output, n]));
  const findings: Finding[] = [];
  for (const second of norms) {
    let t = second.input;
    let first = byOutput.get(t);
    for (let step = 0; !first && step < 3; step++) {
      const p = index.producer.get(t);
      if (!p || !TRANSPARENT.has(p.opType)) break;
      t = p.inputs[0];
      first = byOutput.get(t);
    }
    if (!first || first === second) continue;
    findings.push({
      ruleId: "norm.post-norm/back-to-back", category: "norm.post-norm", severity: "info", layer: second.module, node: second.node,
      message: `${normTitle(second)} directly normalizes the output of ${normTitle(first)}: the second normalization re-normalizes an already normalized tensor, so only its gamma and beta have an effect. A Post-Norm stack with an extra final norm (nn.Transformer's default) does this.`,
      evidence: { first: first.node, second: second.node },
      fix: "Drop one of the two (e.g. the final encoder norm of a Post-Norm stack), or use Pre-Norm, where the final norm is needed.",
    });
  }
  return findings;
}
