// Seeded mutation fuzzing of the loader and static analysis (issue 6): every mutated model must
// end in a report or a DoctorError (model.invalid / model.unsupported) — never another exception
// or a hang. CI runs 2,000 cases; FUZZ_CASES=20000 FUZZ_SEED=7 npm test runs more or other ones.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema } from "../../src/onnx/gen/onnx_pb";
import { analyze } from "../../src/index";
import { DoctorError } from "../../src/onnx/errors";
import { Random } from "../../src/stats/random";
import { FIXTURES, REAL } from "./helpers";

const CASES = Number(process.env.FUZZ_CASES ?? 2000);
const onnxFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".onnx")).map((f) => join(dir, f)) : []);
// Fixtures, plus the real models (Constant-node weights, If subgraphs, IR 3) when present.
const seeds = [...onnxFiles(FIXTURES), ...onnxFiles(REAL)].map((f) => readFileSync(f));

type Mutation = (bytes: Uint8Array, r: Random) => Uint8Array;

const byteMutations: Mutation[] = [
  (b, r) => b.subarray(0, r.int(b.length)), // truncation
  (b, r) => { const c = Uint8Array.from(b); for (let k = 1 + r.int(8); k > 0; k--) c[r.int(c.length)] ^= 1 << r.int(8); return c; }, // bit flips
  (b, r) => { const c = Uint8Array.from(b); const at = r.int(c.length - 5); c.set([0xff, 0xff, 0xff, 0xff, 0x0f], at); return c; }, // huge varint length
  (b, r) => { const c = Uint8Array.from(b); const at = r.int(c.length); c.fill(r.int(256), at, Math.min(c.length, at + 1 + r.int(64))); return c; }, // smeared bytes
];

/** Structured mutations: valid protobuf, hostile content. */
const structMutations: Mutation[] = [
  (b, r) => mutate(b, (m) => { const t = pick(m.graph!.initializer, r); if (t) t.dims = [BigInt(10 ** (6 + r.int(7))), ...t.dims.slice(1)]; }), // huge declared size
  (b, r) => mutate(b, (m) => { const t = pick(m.graph!.initializer, r); if (t) t.dims = t.dims.map((d) => -d); }), // negative dims
  (b, r) => mutate(b, (m) => { const t = pick(m.graph!.initializer, r); if (t) t.dataType = r.int(30); }), // wrong element types
  (b, r) => mutate(b, (m) => { const t = pick(m.graph!.initializer, r); if (t) t.rawData = t.rawData.subarray(0, r.int(t.rawData.length)); }), // short data
  (b, r) => mutate(b, (m) => { const n = pick(m.graph!.node, r); if (n) n.input = [...n.input, n.output[0]]; }), // cycle
  (b, r) => mutate(b, (m) => { const n = pick(m.graph!.node, r); if (n) n.input = n.input.map((i, k) => (k === 0 ? `dangling_${r.int(99)}` : i)); }), // dangling input
  (b, r) => mutate(b, (m) => { const n = pick(m.graph!.node, r); if (n) n.opType = ["Conv", "Gemm", "MatMul", "Relu", "NoSuchOp", ""][r.int(6)]; }), // wrong ops
  (b, r) => mutate(b, (m) => { m.graph!.node.reverse(); void r; }), // not topologically sorted
  (b, r) => mutate(b, (m) => { // deep nesting of If subgraphs
    let inner = create(NodeProtoSchema, { opType: "Identity", input: ["input"], output: ["deep"] });
    for (let k = 0; k < 50 + r.int(200); k++) {
      const g = create(GraphProtoSchema, { name: `g${k}`, node: [inner] });
      inner = create(NodeProtoSchema, { opType: "If", input: ["cond"], output: [`deep${k}`], attribute: [create(AttributeProtoSchema, { name: "then_branch", type: AttributeProto_AttributeType.GRAPH, g })] });
    }
    m.graph!.node.push(inner);
  }),
];

function pick<T>(xs: T[], r: Random): T | undefined {
  return xs.length ? xs[r.int(xs.length)] : undefined;
}

function mutate(bytes: Uint8Array, change: (m: ReturnType<typeof fromBinary<typeof ModelProtoSchema>>) => void): Uint8Array {
  const m = fromBinary(ModelProtoSchema, bytes);
  change(m);
  return toBinary(ModelProtoSchema, m);
}

describe("fuzzing", () => {
  it(`${CASES} mutated models end in a report or a clear error`, { timeout: 15 * 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "fuzz-"));
    const r = new Random(Number(process.env.FUZZ_SEED ?? 20261203));
    const outcomes = { report: 0, invalid: 0, unsupported: 0, probed: 0 };
    for (let k = 0; k < CASES; k++) {
      const seed = seeds[r.int(seeds.length)];
      const all = [...byteMutations, ...structMutations];
      const bytes = all[r.int(all.length)](seed, r);
      const path = join(dir, `case${k % 16}.onnx`);
      writeFileSync(path, bytes);
      // Every 20th case also runs the probe through onnxruntime.
      const probe = k % 20 === 0;
      try {
        const started = performance.now();
        const report = await analyze(path, { staticOnly: !probe, batchSize: 2, batches: 1 });
        assert.ok(performance.now() - started < 30_000, `case ${k} took too long`);
        outcomes.report++;
        if (report.probe.ran) outcomes.probed++;
        JSON.stringify(report);
      } catch (e) {
        if (!(e instanceof DoctorError) || (e.code !== "model.invalid" && e.code !== "model.unsupported")) {
          writeFileSync(join(dir, `failing-${k}.onnx`), bytes);
          assert.fail(`case ${k}: ${e instanceof Error ? e.stack : String(e)} (model kept in ${dir}/failing-${k}.onnx)`);
        }
        assert.doesNotMatch(e.message, /\n/, "one line");
        outcomes[e.code === "model.invalid" ? "invalid" : "unsupported"]++;
      }
    }
    console.log(`fuzz: ${CASES} cases tried: ${JSON.stringify(outcomes)}`);
  });
});
