import { generatedPrefix } from "../instrument/names";
import { defaultOpset, type Model } from "../onnx/model";
import { buildBackward, type Backward } from "./backward";
import { GradEmitter } from "./emit";
import { emitLoss, type EmittedLoss, type LossName } from "./loss";
import type { TensorInfo } from "./shapes";

/** The loss, its closed-form output gradients and the backward graph, emitted into one builder. */
export interface GradientGraph {
  readonly emitter: GradEmitter;
  readonly loss: EmittedLoss;
  readonly backward: Backward;
}

/**
 * Emits loss + backward for gradients of `targets` (layer outputs, weights, inputs). Nodes are
 * named under a prefix no name of the model starts with, so they cannot clash with the model's or the statistics' own.
 */
export function buildGradientGraph(model: Model, info: TensorInfo, loss: LossName, targets: readonly string[], options: { withTargets?: boolean; lossInDouble?: boolean; identityCopiesAreParameters?: boolean } = {}): GradientGraph {
  const emitter = new GradEmitter(generatedPrefix(model, "__doctor_grad"), defaultOpset(model));
  const emitted = emitLoss(emitter, model, info, loss, options.withTargets ?? false, options.lossInDouble);
  const backward = buildBackward(model, info, emitter, emitted.seeds, targets, { identityCopiesAreParameters: options.identityCopiesAreParameters });
  return { emitter, loss: emitted, backward };
}
