// Hardening in a real VS Code extension host (issue 6): many models saved at once are queued with bounded
// parallelism and none is lost; the worker's memory limit (modelDoctor.worker.maxMemoryMb) stops an analysis
// with the watchdog's reason as the error. Run alone: MD_TEST_FILES=hardening.test.js scripts/vscode-e2e.sh integration
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { ModelDoctorApi } from "../../extension/extension";
import type { EngineError } from "../../extension/engine";
import type { RunEvent } from "../../extension/controller";
import { activate, EXT_ID, waitFor, waitIdle, ws } from "./helpers";

let api: ModelDoctorApi;
const fixtures = (): string => path.join(vscode.extensions.getExtension(EXT_ID)!.extensionPath, "test", "fixtures", "models");

suite("Hardening: concurrency and worker limits", () => {
  suiteSetup(async () => {
    api = await activate();
    await waitIdle(api, 120000);
  });

  test("20 models written at once: queued with at most 2 analyses in parallel, each ends with the right diagnostics", async function () {
    this.timeout(240000);
    const max = vscode.workspace.getConfiguration("modelDoctor").get<number>("maxParallelAnalyses");
    assert.strictEqual(max, 2, "default modelDoctor.maxParallelAnalyses");
    const dir = path.join(ws(), "burst");
    fs.mkdirSync(dir, { recursive: true });
    const dead = fs.readFileSync(path.join(fixtures(), "dead_relu.onnx"));
    const healthy = fs.readFileSync(path.join(fixtures(), "relu_he_deep.onnx"));
    const files = Array.from({ length: 20 }, (_, i) => ({
      uri: vscode.Uri.file(path.join(dir, `m${String(i).padStart(2, "0")}.onnx`)),
      dead: i % 2 === 0,
    }));
    let maxActive = 0, maxLive = 0, maxQueued = 0, maxRunning = 0;
    api.controller.peakActive(true);
    const sampler = setInterval(() => {
      maxActive = Math.max(maxActive, api.controller.activeCount);
      maxLive = Math.max(maxLive, api.engine.livePids().length);
      maxQueued = Math.max(maxQueued, api.controller.queuedCount);
      maxRunning = Math.max(maxRunning, api.controller.runningCount);
    }, 5);
    const t0 = Date.now();
    try {
      await Promise.all(files.map((f) => vscode.workspace.fs.writeFile(f.uri, f.dead ? dead : healthy)));
      const ok = (f: (typeof files)[number]): boolean => {
        const stored = api.store.get(f.uri);
        if (!stored || api.controller.isRunning(f.uri)) return false;
        const codes = vscode.languages.getDiagnostics(f.uri).map((d) => String(d.code));
        return f.dead ? codes.includes("activation.dead") : codes.length === 0 && stored.report.findings.length === 0;
      };
      await waitFor("every model analysed with the right diagnostics", () => files.every(ok) && api.controller.runningCount === 0, 200000)
        .catch((e: Error) => {
          const missing = files.filter((f) => !ok(f)).map((f) => `${path.basename(f.uri.fsPath)}(${api.store.get(f.uri) ? "stored" : "no report"}: ${vscode.languages.getDiagnostics(f.uri).map((d) => String(d.code)).join(",")})`);
          throw new Error(`${e.message}; not right: ${missing.join(" ")}`);
        });
    } finally {
      clearInterval(sampler);
    }
    const peak = api.controller.peakActive(true);
    console.log(`CONCURRENCY 20 models in ${Date.now() - t0} ms: peak ${peak} analyses at once (sampled ${maxActive}, ${maxLive} live workers), up to ${maxQueued} queued, ${maxRunning} pending in all`);
    assert.ok(peak <= 2 && maxActive <= 2, `at most 2 analyses at once (peak ${peak}, sampled ${maxActive})`);
    assert.ok(maxLive <= 2, `at most 2 worker processes at once (${maxLive})`);
    assert.strictEqual(peak, 2, "the two slots are used");
    assert.ok(maxQueued >= 10, `the other models waited in the queue (max ${maxQueued} queued)`);
    for (const f of files) {
      const diags = vscode.languages.getDiagnostics(f.uri);
      if (f.dead) assert.ok(diags.some((d) => d.code === "activation.dead"), `${f.uri.fsPath}: activation.dead`);
      else assert.strictEqual(diags.length, 0, `${f.uri.fsPath}: no diagnostics`);
    }
    await Promise.all(files.map((f) => vscode.workspace.fs.delete(f.uri)));
    await waitFor("burst models forgotten", () => files.every((f) => !api.store.get(f.uri) && vscode.languages.getDiagnostics(f.uri).length === 0), 10000);
    fs.rmdirSync(dir);
  });

  test("worker memory limit: 50 MB stops the analysis with the watchdog's reason; without it the next run works", async function () {
    this.timeout(180000);
    const model = path.join(ws(), "big", "resnet18.onnx");
    // the engine directly: the watchdog's one line becomes a worker.memory error
    await assert.rejects(api.engine.run(model, {}, { timeoutMs: 60000, maxMemoryMb: 50 }).promise, (e: EngineError) => {
      console.log(`MEMORY engine error: ${e.code}: ${e.message}`);
      return e.code === "worker.memory" && /above --max-memory 50 MB/.test(e.message) && /modelDoctor\.worker\.maxMemoryMb/.test(e.message);
    });
    // through the setting and the controller (what the UI shows: the failed event and the error message)
    const config = vscode.workspace.getConfiguration("modelDoctor");
    assert.strictEqual(config.get("worker.maxMemoryMb"), 4096, "default modelDoctor.worker.maxMemoryMb");
    await config.update("worker.maxMemoryMb", 50, vscode.ConfigurationTarget.Workspace);
    try {
      const uri = vscode.Uri.file(model);
      const failed: RunEvent[] = [];
      const sub = api.controller.onRun((e) => { if (e.kind === "failed" && e.uri.toString() === uri.toString()) failed.push(e); });
      try {
        const report = await api.analyze(uri);
        assert.strictEqual(report, undefined, "no report above the memory limit");
      } finally {
        sub.dispose();
      }
      assert.strictEqual(failed.length, 1, `one failed event (${failed.length})`);
      const f = failed[0] as Extract<RunEvent, { kind: "failed" }>;
      assert.strictEqual(f.code, "worker.memory");
      assert.ok(/^the analysis was stopped: analysis stopped at \d+ MB resident, above --max-memory 50 MB/.test(f.message), f.message);
    } finally {
      await config.update("worker.maxMemoryMb", undefined, vscode.ConfigurationTarget.Workspace);
    }
    // the default limit: a small model runs
    const small = await api.analyze(vscode.Uri.file(path.join(ws(), "models", "dead_relu.onnx")));
    assert.ok(small?.findings.some((x) => x.category === "activation.dead"), "the next analysis works");
  });
});
