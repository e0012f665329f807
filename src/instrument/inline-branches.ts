import { create, toBinary } from "@bufbuild/protobuf";
import { GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type NodeProto, type TensorProto } from "../onnx/gen/onnx_pb";
import { loadModel } from "../onnx/load";
import type { Model } from "../onnx/model";
import type { ProbePlan } from "../probe/inputs";
import { RuntimeSession } from "../runtime/session";
import { serializeWith } from "./stats-graph";

/** The model the probe runs, and the subgraph scopes whose layers it can now see. */
export interface InlinedModel {
  readonly model: Model;
  readonly scopes: ReadonlySet<string>;
  /** "If_25 -> then_branch": which branch each inlined If took. */
  readonly taken: readonly string[];
}

/**
 * Replaces every top-level If whose condition comes out the same on all probe batches by the
 * branch it takes, so the layers inside (Silero VAD keeps its LSTMs and convs in If branches)
 * become ordinary tensors the probe can summarise. The condition is computed by onnxruntime on
 * the probe's own inputs, so the rewrite changes nothing the model would compute.
 */
export async function inlineTakenBranches(model: Model, plan: Pick<ProbePlan, "batches" | "feeds">, intraOpThreads?: number): Promise<InlinedModel> {
  // Nested Ifs surface at the top level once their parent is inlined: repeat a few levels deep.
  const original = model;
  const scopes = new Set<string>();
  const taken: string[] = [];
  for (let depth = 0; depth < 4; depth++) {
    const step = await inlineOnce(model, original, plan, intraOpThreads);
    if (step.scopes.size === 0) break;
    model = step.model;
    for (const s of step.scopes) scopes.add(s);
    taken.push(...step.taken);
  }
  return { model, scopes, taken };
}

async function inlineOnce(model: Model, original: Model, plan: Pick<ProbePlan, "batches" | "feeds">, intraOpThreads?: number): Promise<InlinedModel> {
  const ifs = model.nodes.filter((n) => n.opType === "If" && (n.domain === "" || n.domain === "ai.onnx") && n.inputs[0]);
  if (ifs.length === 0) return { model, scopes: new Set(), taken: [] };
  const conds = [...new Set(ifs.map((n) => n.inputs[0]))];
  const seen = new Map<string, Set<boolean>>(conds.map((c) => [c, new Set<boolean>()]));
  const session = await RuntimeSession.open(serializeWith(model, [], [], conds), model.externalFiles, { intraOpThreads });
  try {
    for (let b = 0; b < plan.batches; b++) {
      const r = await session.run(plan.feeds(b), conds);
      for (const c of conds) seen.get(c)!.add(Boolean(r[c].data[0]));
    }
  } finally {
    await session.release();
  }
  const scopes = new Set<string>();
  const taken: string[] = [];
  const initializers: TensorProto[] = [];
  const nodes: NodeProto[] = model.nodes.flatMap((n) => {
    const values = seen.get(n.inputs[0]);
    if (!ifs.includes(n) || !values || values.size !== 1) return [n.proto];
    const attr = [...values][0] ? "then_branch" : "else_branch";
    const branch = n.attrs.get(attr)?.g;
    if (!branch || branch.output.length !== n.outputs.length) return [n.proto];
    // Layers keep the scope they had in the original model, nested Ifs included.
    const outer = original.subgraphNodes.find((s) => s.name === n.name)?.scope ?? "";
    scopes.add(`${outer}${n.name}/${attr}/`);
    taken.push(`${n.name} -> ${attr}`);
    initializers.push(...branch.initializer);
    // The branch's outputs become the If's outputs through Identity nodes.
    const rename = branch.output.map((o, i) => create(NodeProtoSchema, { opType: "Identity", name: `${n.name}/${attr}/output_${i}`, input: [o.name], output: [n.outputs[i]] }));
    return [...branch.node, ...rename];
  });
  if (scopes.size === 0) return { model, scopes, taken };
  const graph = model.proto.graph!;
  const bytes = toBinary(ModelProtoSchema, create(ModelProtoSchema, {
    ...model.proto,
    graph: create(GraphProtoSchema, { ...graph, node: nodes, initializer: [...graph.initializer, ...initializers] }),
  }));
  return { model: loadModel(model.path, { bytes }), scopes, taken };
}
