import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { floatTensor, graph, modelBytes, node, rawTensor, DT, valueInfo } from "./build-model";
import { FIXTURES, npyBytes } from "./helpers";

const int64Tensor = (name: string, dims: number[], values: number[]) => rawTensor(name, DT.INT64, dims, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));

const CLI = join(__dirname, "..", "..", "dist", "cli.js");
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
const model = (stem: string): string => join(FIXTURES, `${stem}.onnx`);

describe("onnx-doctor CLI", () => {
  it("prints the textbook diagnosis of the tiny-init tanh MLP", () => {
    const p = run("analyze", model("tanh_tiny_init"));
    assert.equal(p.status, 0, p.stderr); // warnings only: --fail-on error passes
    assert.match(p.stdout, /warning\s+activation\.vanishing\s+layers\.18/);
    assert.match(p.stdout, /activation std falls from 0\.1\d+ \(layers\.0\) to \S+e-\d+ \(layers\.18\)/);
    assert.match(p.stdout, /init\.scale-small\s+layers\.0\n.*weight std 0\.01\d* is 0\.11\dx the Xavier std 0\.0884/);
  });

  it("writes versioned JSON with the fields other tools rely on", () => {
    const out = join(mkdtempSync(join(tmpdir(), "cli-")), "r.json");
    const p = run("analyze", model("dead_relu"), "-f", "json", "-o", out, "--batch-size", "4", "--batches", "3", "--seed", "7");
    assert.equal(p.status, 1, "dead units are an error, so --fail-on error fails");
    const r = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(r.schemaVersion, 1);
    for (const k of ["path", "sha256", "irVersion", "opsets", "producer", "parameterCount", "nodeCount"]) assert.ok(k in r.model, `model.${k}`);
    assert.equal(r.model.parameterCount, 64 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 10 + 10);
    assert.deepEqual([r.probe.batchSize, r.probe.batches, r.probe.seed, r.probe.inputs[0].shape], [4, 3, 7, [4, 64]]);
    const dead = r.findings.find((f: { category: string }) => f.category === "activation.dead");
    assert.equal(dead.layer, "layers.2");
    assert.equal(dead.evidence.silentInputFrom, null);
    // layers.4 is dead only because layers.2 feeds it zeros: its fix points upstream, not at its own bias of 0.
    const downstream = r.findings.find((f: { category: string; layer: string }) => f.category === "activation.dead" && f.layer === "layers.4");
    assert.equal(downstream.evidence.silentInputFrom, "layers.2");
    assert.match(downstream.fix, /^Fix layers\.2 first/);
    const layer = r.layers.find((l: { name: string }) => l.name === "layers.2");
    assert.deepEqual([layer.activation.deadUnits, layer.activation.units], [128, 128]);
    assert.equal(layer.activation.histogram.counts.length, 32);
  });

  it("--fail-on controls the exit code; markdown has the findings and the layer table", () => {
    assert.equal(run("analyze", model("tanh_tiny_init"), "--fail-on", "warning").status, 1);
    const zero = run("analyze", model("zero_mlp"), "--fail-on", "never", "-f", "json");
    assert.equal(zero.status, 0);
    // Units silenced by all-zero weights: the fix points at the weights, not at the bias.
    const dead = JSON.parse(zero.stdout).findings.filter((f: { category: string }) => f.category === "activation.dead");
    assert.ok(dead.length > 0 && dead.every((f: { fix: string }) => /^All weights of this layer are equal \(0\)/.test(f.fix)), JSON.stringify(dead.map((f: { fix: string }) => f.fix)));
    const md = run("analyze", model("zero_mlp"), "-f", "markdown", "--static");
    assert.match(md.stdout, /## Findings \(3 errors/);
    assert.match(md.stdout, /\| 0 \| layers\.0 \| Gemm \| relu \|/);
    // Node names carrying HTML stay inert text; ordinary '>' in messages is left readable.
    const hostile = run("analyze", model("hostile_names"), "-f", "markdown", "--static").stdout;
    assert.match(hostile, /&lt;img src=x onerror=/);
    assert.doesNotMatch(hostile, /<img/);
    assert.doesNotMatch(hostile, /&gt;/);
  });

  it("writes SARIF 2.1.0 and a standalone HTML report", () => {
    const sarif = JSON.parse(run("analyze", model("dead_relu"), "-f", "sarif").stdout);
    assert.equal(sarif.version, "2.1.0");
    const json = JSON.parse(run("analyze", model("dead_relu"), "-f", "json").stdout);
    assert.equal(sarif.runs[0].results.length, json.findings.length);
    assert.ok(sarif.runs[0].results.some((r: { ruleId: string; level: string }) => r.ruleId === "activation.dead" && r.level === "error"));
    const html = run("analyze", model("dead_relu"), "-f", "html").stdout;
    assert.match(html, /^<!DOCTYPE html>/i);
    assert.match(html, /Content-Security-Policy/);
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href="http/i, "no network resources");
  });

  it("--timeout and --max-memory stop a long or hungry analysis with one line", () => {
    // 12 chained [8,1024,1024] x [1024,1024] MatMuls: many seconds of work at the default batch.
    const dir = mkdtempSync(join(tmpdir(), "cli-"));
    const nodes = Array.from({ length: 12 }, (_, i) => node("MatMul", [i ? `h${i - 1}` : "e", "w"], [i === 11 ? "y" : `h${i}`]));
    const g = graph([node("Expand", ["x", "shape"], ["e"]), ...nodes], [floatTensor("w", [1024, 1024], new Array(1024 * 1024).fill(0.001)), int64Tensor("shape", [3], [1, 1024, 1024])],
      [valueInfo("x", ["batch", 1, 1024])], [valueInfo("y", ["batch", 1024, 1024])]);
    const path = join(dir, "slow.onnx");
    writeFileSync(path, modelBytes(g));
    const started = Date.now();
    const slow = run("analyze", path, "--timeout", "2");
    assert.equal(slow.status, null, "killed");
    assert.match(slow.stderr, /^onnx-doctor: timeout: analysis stopped after 2 s \(--timeout\)/);
    assert.ok(Date.now() - started < 15_000, "stopped promptly");
    const hungry = run("analyze", path, "--max-memory", "64");
    assert.match(hungry.stderr, /^onnx-doctor: memory: analysis stopped at \d+ MB resident, above --max-memory 64 MB/);
  });

  it("names the first node that produces NaN", () => {
    const r = JSON.parse(run("analyze", model("nan_weight"), "-f", "json").stdout);
    const nf = r.findings.find((f: { category: string }) => f.category === "numeric.nonfinite");
    assert.equal(nf.node, "/layers/layers.4/Gemm");
    assert.match(nf.message, /; its constant input layers\.4\.weight already holds NaN\/Inf \(a weight stored that way: replace it\)\./);
    assert.ok(r.findings.some((f: { category: string; layer: string }) => f.category === "weights.nonfinite" && f.layer === "layers.4"));
  });

  it("rejects bad options and bad probe data with one line", () => {
    const bad = run("analyze", model("tanh_tiny_init"), "--batch-size", "0");
    assert.equal(bad.status, 2, "usage errors exit 2, findings exit 1");
    assert.match(bad.stderr, /must be a positive integer/);
    assert.equal(run("analyze", model("tanh_tiny_init"), "--format", "xml").status, 2);
    assert.equal(run("analyze", model("tanh_tiny_init"), "--bogus").status, 2);
    assert.equal(run("--version").status, 0);
    const labelsOnly = run("analyze", model("tanh_tiny_init"), "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.equal(labelsOnly.status, 2);
    assert.match(labelsOnly.stderr, /--labels needs --input/);
    const labelsIgnored = run("analyze", model("tanh_tiny_init"), "--loss", "none", "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.match(labelsIgnored.stderr, /--labels is used only by --loss ce or mse/);
    const wrongShape = run("analyze", model("resnet_bn"), "--input", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.equal(wrongShape.status, 2);
    assert.match(wrongShape.stderr, /^onnx-doctor: probe\.input: tanh_tiny_init\.probe\.npy: "input" has shape \[16,128\] but the model expects rank 4/);
    const badDim = run("analyze", model("resnet_bn"), "--dim", "H=3");
    assert.match(badDim.stderr, /--dim H: the model has no dimension named "H"; its symbolic dimensions are: batch/);
  });

  it("converts numpy's default float64 data to a float32 input and says so; refuses bool data with the numpy fix", () => {
    const dir = mkdtempSync(join(tmpdir(), "doctor-cli-dtype-"));
    const f64 = join(dir, "x64.npy");
    const values = Float64Array.from({ length: 16 * 128 }, (_, i) => Math.sin(i));
    writeFileSync(f64, npyBytes("<f8", [16, 128], values));
    const f32 = join(dir, "x32.npy");
    writeFileSync(f32, npyBytes("<f4", [16, 128], Float32Array.from(values)));
    const a = run("analyze", model("tanh_tiny_init"), "--input", f64, "-f", "json");
    const b = run("analyze", model("tanh_tiny_init"), "--input", f32, "-f", "json");
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    assert.deepEqual(ra.probe.notes, ['x64.npy: "input" converted from float64 to float32, the model\'s type']);
    // The same float32 values either way: identical statistics.
    assert.deepEqual(ra.layers.map((l: { activation: { std: number } }) => l.activation.std), rb.layers.map((l: { activation: { std: number } }) => l.activation.std));
    const bools = join(dir, "xb.npy");
    writeFileSync(bools, npyBytes("|b1", [16, 128], new Uint8Array(16 * 128)));
    const c = run("analyze", model("tanh_tiny_init"), "--input", bools);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /xb\.npy: "input" is bool but the model expects float32; save it with x\.astype\(numpy\.float32\)/);
  });

  it("prefixes usage errors like every other error and checks labels against the probe rows", () => {
    const bogus = run("gradcheck", model("tanh_tiny_init"), "--bogus");
    assert.equal(bogus.status, 2);
    assert.equal(bogus.stderr, "onnx-doctor: usage: unknown option '--bogus'\n");
    const hugeStep = run("gradcheck", model("tanh_tiny_init"), "--epsilon", "1e300");
    assert.equal(hugeStep.status, 2);
    assert.match(hugeStep.stderr, /^onnx-doctor: usage: option '--epsilon <e>' argument '1e300' is invalid\. must be at most 0\.1/);
    const twice = run("analyze", model("tanh_tiny_init"), "--dim", "batch=4", "--dim", "batch=5");
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /batch is given twice, as 4 and 5; give it once/);
    const labelsOnly = run("gradcheck", model("tanh_tiny_init"), "--labels", join(FIXTURES, "tanh_tiny_init.probe.npy"));
    assert.equal(labelsOnly.status, 2);
    assert.match(labelsOnly.stderr, /^onnx-doctor: probe\.input: --labels needs --input/);
    // The probe data has 16 rows; 17 labels cannot pair with them.
    const labels = join(mkdtempSync(join(tmpdir(), "cli-")), "y17.npy");
    writeFileSync(labels, npyBytes("<i8", [17], BigInt64Array.from({ length: 17 }, (_, i) => BigInt(i % 10))));
    for (const command of ["analyze", "gradcheck"]) {
      const p = run(command, model("tanh_tiny_init"), "--input", join(FIXTURES, "tanh_tiny_init.probe.npy"), "--labels", labels, ...(command === "gradcheck" ? ["--no-progress"] : []));
      assert.equal(p.status, 2, command);
      assert.match(p.stderr, /^onnx-doctor: probe\.input: y17\.npy has 17 rows of labels but the probe data has 16 rows/, command);
    }
  });
});
