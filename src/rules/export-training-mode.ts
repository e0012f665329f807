import { batchNormTrainingMode } from "../graph/norms";
import type { Finding } from "../report/types";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/**
 * A graph exported in training mode (torch.onnx.export(..., training=TrainingMode.TRAINING), or a
 * model left in .train()): Dropout with training_mode = true drops random activations on every
 * inference call, and BatchNormalization in training mode normalizes with the statistics of the
 * current batch instead of the running ones, so a prediction depends on the other samples in the
 * batch (and a batch of one is normalized to zero).
 */
export const exportTrainingMode: Rule = {
  id: "export.training-mode",
  needsProbe: false,
  check: ({ architecture, model }) => {
    if (!architecture) return [];
    const findings: Finding[] = [];
    for (const d of architecture.dropouts) {
      if (d.trainingMode === false) continue;
      const runtime = d.trainingMode === null;
      findings.push({
        ruleId: runtime ? "export.training-mode/dropout-input" : "export.training-mode/dropout", category: "export.training-mode",
        severity: runtime ? "warning" : "error", layer: d.module, node: d.node.name,
        message: runtime
          ? `Dropout at ${d.module ?? d.node.name} takes its training_mode from a run-time input: if it is ever fed true, inference drops activations at random.`
          : `Dropout${d.rate === null ? "" : ` (rate ${fmt(d.rate)})`} at ${d.module ?? d.node.name} is exported in training mode: every inference call zeroes a random ${d.rate === null ? "fraction" : `${fmt(100 * d.rate)}%`} of its activations and scales the rest, so the same input gives different outputs.`,
        evidence: { dropoutRate: d.rate, trainingMode: d.trainingMode },
        fix: "Call model.eval() before torch.onnx.export and export with training=torch.onnx.TrainingMode.EVAL (the default).",
      });
    }
    for (const n of model.nodes) {
      if (n.opType !== "BatchNormalization" || !batchNormTrainingMode(n)) continue;
      const bn = architecture.norms.find((m) => m.nodes[0] === n);
      findings.push({
        ruleId: "export.training-mode/batchnorm", category: "export.training-mode", severity: "error", layer: bn?.module, node: n.name,
        message: `BatchNorm ${bn?.module ?? n.name} is exported in training mode: at inference it normalizes with the current batch's mean and variance instead of the running statistics, so each prediction depends on the rest of the batch (a batch of one comes out as beta).`,
        evidence: { trainingMode: true, outputs: n.outputs.filter(Boolean).length },
        fix: "Call model.eval() before torch.onnx.export and export with training=torch.onnx.TrainingMode.EVAL (the default).",
      });
    }
    return findings;
  },
};
