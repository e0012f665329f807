// Integration tests in a real VS Code extension host (run by scripts/vscode-e2e.sh). The workspace
// is a scratch folder with copies of the fixtures in models/, their probe data in data/ and a generated
// ResNet-18 (scripts/bench-models.ts, 47 MB) in big/.
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { ModelDoctorApi } from "../../extension/extension";
import type { EngineError } from "../../extension/engine";
import type { RunEvent } from "../../extension/controller";
import type { Report } from "../../src/report/types";
import { activate, describeLoop, EXT_ID, sleep, waitFor, waitIdle, watchEventLoop, ws } from "./helpers";
import type { GradcheckSummary } from "../../extension/gradcheck";

let api: ModelDoctorApi;
const fixtures = (): string => path.join(vscode.extensions.getExtension(EXT_ID)!.extensionPath, "test", "fixtures", "models");

suite("ONNX Model Doctor extension", () => {
  suiteSetup(async () => {
    api = await activate();
  });

  test("commands are registered under Model Doctor", async () => {
    const cmds = await vscode.commands.getCommands(true);
    for (const c of ["analyze", "analyzeWithData", "checkGradients", "exportReport", "clearDiagnostics", "showLog", "openReport", "revealFinding"]) {
      assert.ok(cmds.includes(`modelDoctor.${c}`), `modelDoctor.${c} registered`);
    }
    await vscode.commands.executeCommand("modelDoctor.showLog");
  });

  test("analysing tanh_tiny_init publishes diagnostics incl. activation.vanishing", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const report = await vscode.commands.executeCommand<{ findings: { category: string }[] } | undefined>("modelDoctor.analyze", uri);
    assert.ok(report, "the command returns the report");
    const diags = vscode.languages.getDiagnostics(uri);
    const vanishing = diags.filter((d) => d.code === "activation.vanishing");
    assert.strictEqual(vanishing.length, 1, `diagnostics: ${diags.map((d) => String(d.code)).join(", ")}`);
    assert.strictEqual(vanishing[0].severity, vscode.DiagnosticSeverity.Warning);
    assert.strictEqual(vanishing[0].source, "Model Doctor");
    assert.ok(diags.filter((d) => d.code === "init.scale-small").length >= 9);
    assert.ok(/Fix:/.test(vanishing[0].message));
    // the command opened the report editor
    await waitFor("report panel", () => api.editor.openPanels(uri) > 0, 10000);
  });

  test("findings tree: model -> severity -> findings", async () => {
    const models = api.treeChildren();
    const tiny = models.find((m) => m.kind === "model" && m.stored.uri.fsPath.endsWith("tanh_tiny_init.onnx"));
    assert.ok(tiny, `tree roots: ${models.length}`);
    const groups = api.treeChildren(tiny);
    assert.deepStrictEqual(groups.map((g) => g.kind === "severity" && g.severity), ["warning"]);
    const items = api.treeChildren(groups[0]);
    assert.ok(tiny.kind === "model" && items.length === tiny.stored.report.summary.warnings && items.length >= 11, `${items.length} warnings`);
    assert.strictEqual(api.tree.getTreeItem(groups[0]).label, `Warnings (${items.length})`);
    const item = items.map((i) => api.tree.getTreeItem(i)).find((i) => /activation\.vanishing/.test(String(i.description)));
    assert.ok(item, "a row for the activation.vanishing finding");
    assert.strictEqual(item.command?.command, "modelDoctor.revealFinding");
    await vscode.commands.executeCommand(item.command.command, ...(item.command.arguments ?? []));
  });

  test("lint on save: a faulty model gets diagnostics within 5 s, a healthy replacement clears them, delete clears", async () => {
    const dir = path.join(ws(), "saved");
    fs.mkdirSync(dir, { recursive: true });
    const uri = vscode.Uri.file(path.join(dir, "model.onnx"));
    const t0 = Date.now();
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "dead_relu.onnx")));
    await waitFor("diagnostics on the saved model", () => vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.dead"), 5000);
    const ms = Date.now() - t0;
    console.log(`LATENCY save -> diagnostics: ${ms} ms`);
    assert.ok(ms < 5000);
    assert.ok(vscode.languages.getDiagnostics(uri).every((d) => d.severity === vscode.DiagnosticSeverity.Error));

    const t1 = Date.now();
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "relu_he_deep.onnx")));
    await waitFor("diagnostics cleared after a healthy model replaced it", () => vscode.languages.getDiagnostics(uri).length === 0 && api.store.get(uri)?.report.layers.length === 10, 5000);
    console.log(`LATENCY healthy save -> diagnostics cleared: ${Date.now() - t1} ms`);

    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "zero_mlp.onnx")));
    await waitFor("diagnostics again", () => vscode.languages.getDiagnostics(uri).length > 0, 5000);
    await vscode.workspace.fs.delete(uri);
    await waitFor("diagnostics cleared on delete", () => vscode.languages.getDiagnostics(uri).length === 0 && !api.store.get(uri), 5000);
  });

  test("a rapid second save cancels the first run (debounced, one report)", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "saved", "twice.onnx"));
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "dead_relu.onnx")));
    await sleep(50);
    await vscode.workspace.fs.writeFile(uri, fs.readFileSync(path.join(fixtures(), "tanh_tiny_init.onnx")));
    await waitFor("report of the second version", () => api.store.get(uri)?.report.findings.some((f) => f.category === "activation.vanishing"), 8000);
    assert.ok(!vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.dead"));
    await vscode.workspace.fs.delete(uri);
  });

  test("custom editor opens the report for a model", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "relu_he_deep.onnx"));
    await vscode.commands.executeCommand("vscode.openWith", uri, "modelDoctor.report");
    await waitFor("panel", () => api.editor.openPanels(uri) > 0, 10000);
    await waitFor("report from the editor's own analysis", () => api.store.get(uri), 15000);
    assert.strictEqual(api.store.get(uri)!.report.findings.length, 0);
  });

  test("export writes SARIF 2.1.0, HTML, JSON and Markdown", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const out = path.join(ws(), "exports");
    fs.mkdirSync(out, { recursive: true });
    for (const [format, ext] of [["sarif", "sarif"], ["html", "html"], ["json", "json"], ["markdown", "md"]] as const) {
      const target = vscode.Uri.file(path.join(out, `tiny.${ext}`));
      await vscode.commands.executeCommand("modelDoctor.exportReport", uri, format, target);
      assert.ok(fs.existsSync(target.fsPath), `${format} written`);
    }
    const sarif = JSON.parse(fs.readFileSync(path.join(out, "tiny.sarif"), "utf8"));
    assert.strictEqual(sarif.version, "2.1.0");
    assert.ok(sarif.runs[0].results.some((r: { ruleId: string }) => r.ruleId === "activation.vanishing"));
    const html = fs.readFileSync(path.join(out, "tiny.html"), "utf8");
    assert.ok(html.includes('id="md-report"') && html.includes("Content-Security-Policy"));
    assert.ok(!/<script[^>]+src=/.test(html), "no external scripts");
  });

  test("worker: kill -9 gives a clear error and the next run works; timeout and cancel", async () => {
    const model = path.join(fixtures(), "tanh_tiny_init.onnx");
    const run = api.engine.run(model, {}, { timeoutMs: 30000 });
    await sleep(100);
    process.kill(run.pid!, "SIGKILL");
    await assert.rejects(run.promise, (e: EngineError) => e.code === "worker.crashed" && /stopped unexpectedly/.test(e.message));
    const again = await api.engine.run(model, {}, { timeoutMs: 30000 }).promise;
    assert.strictEqual(again.layers.length, 10);
    await assert.rejects(api.engine.run(model, {}, { timeoutMs: 1 }).promise, (e: EngineError) => e.code === "timeout");
    const c = api.engine.run(model, {}, { timeoutMs: 30000 });
    c.cancel();
    await assert.rejects(c.promise, (e: EngineError) => e.code === "cancelled");
  });

  test("Check Gradients grades the backward graph of a model by finite differences", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_xavier.onnx"));
    const result = await vscode.commands.executeCommand<GradcheckSummary | undefined>("modelDoctor.checkGradients", uri);
    assert.ok(result, "a result");
    // Every weight, bias and the input of a float64-capable tanh MLP: the seed's "good" grade.
    assert.strictEqual(result.wrong, 0);
    assert.ok(result.good >= 16, `${result.good} good of ${result.checks.length}`);
    assert.match(result.precisionNote, /float64/);
  });

  test("Analyze with Probe Data… runs the model on a .npy file", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const data = vscode.Uri.file(path.join(ws(), "data", "tanh_tiny_init.probe.npy"));
    const report = await vscode.commands.executeCommand<Report | undefined>("modelDoctor.analyzeWithData", uri, data);
    assert.ok(report?.probe.ran, "the probe ran");
    assert.deepStrictEqual(report.probe.inputs.map((i) => [i.name, i.source, i.shape]), [["input", "file", [8, 128]]]);
    assert.strictEqual(report.probe.batches, 2, "the 16 rows in two batches of 8");
    // the statistics are those of the file's 16 rows (PyTorch's numbers in the fixture), not of synthetic data
    const expected = JSON.parse(fs.readFileSync(path.join(fixtures(), "tanh_tiny_init.expected.json"), "utf8")) as { layers: { std: number }[] };
    const std0 = report.layers[0].activation!.std;
    assert.ok(Math.abs(std0 - expected.layers[0].std) / expected.layers[0].std < 1e-3, `layers.0 std ${std0} vs PyTorch ${expected.layers[0].std}`);
    assert.ok(vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.vanishing"));
    assert.strictEqual(api.store.get(uri)?.staticOnly, false);
  });

  test("kill -9 of the worker during a command: a clear error, and the next run of the command works", async () => {
    await waitIdle(api);
    const uri = vscode.Uri.file(path.join(ws(), "big", "resnet18.onnx"));
    const events: RunEvent[] = [];
    const sub = api.controller.onRun((e) => { if (e.kind !== "progress") events.push(e); });
    try {
      const running = vscode.commands.executeCommand<unknown>("modelDoctor.analyze", uri);
      const pid = await waitFor("a worker", () => api.engine.livePids()[0], 10000);
      await sleep(300);
      process.kill(pid, "SIGKILL");
      assert.strictEqual(await running, undefined, "the command gives no report");
      const failed = events.find((e) => e.kind === "failed");
      assert.ok(failed && failed.kind === "failed", `events: ${JSON.stringify(events)}`);
      assert.strictEqual(failed.code, "worker.crashed");
      assert.match(failed.message, /stopped unexpectedly \(signal SIGKILL\).*next analysis starts a fresh worker/);
      assert.strictEqual(api.engine.livePids().length, 0, "no worker left");
      const again = await vscode.commands.executeCommand<Report | undefined>("modelDoctor.analyze", uri);
      assert.ok(again && again.layers.length >= 20, "the next run works");
    } finally {
      sub.dispose();
    }
  });

  test("the extension host's event loop is never blocked > 50 ms (or the idle loop's own stalls) while a ResNet-18 is analysed", async () => {
    // The full user path: the command (progress notification, worker, diagnostics, tree, report webview).
    await waitIdle(api);
    const uri = vscode.Uri.file(path.join(ws(), "big", "resnet18.onnx"));
    const mb = (fs.statSync(uri.fsPath).size / 1e6).toFixed(1);
    // Blocked = a late timer whose delay is not the main thread waiting for a CPU (schedstat, Linux): its own
    // work or a blocking call. Where schedstat is missing, the wall-clock delay itself must stay under 50 ms.
    // A machine whose idle event loop already stalls (a virtual machine descheduled by its host: no CPU
    // time, no run-queue wait) cannot resolve 50 ms; the limit is then 1.5x the idle stall, which still
    // catches a blocking call of our own (hundreds of ms for a synchronous read of the model). A stall with
    // no CPU time can also come from the machine during the run (seen once in CI: 75 ms at one instant, the
    // thread using 0.2 ms of CPU); our own blocking would repeat, so a second run decides.
    const failures: string[] = [];
    for (let attempt = 1; attempt <= 2; attempt++) {
      await waitIdle(api);
      const idle = await watchEventLoop(() => sleep(2000));
      let report: Report | undefined;
      const t0 = performance.now();
      const marks: string[] = [];
      const sub = api.controller.onRun((e) => marks.push(`${(performance.now() - t0).toFixed(0)}:${e.kind}${e.kind === "progress" ? `(${e.message.slice(0, 30)})` : ""}`));
      const run = await watchEventLoop(async () => { report = await vscode.commands.executeCommand<Report | undefined>("modelDoctor.analyze", uri); });
      sub.dispose();
      console.log(`EVENTLOOP attempt ${attempt} marks ${marks.join(" ")}`);
      assert.ok(report?.probe.ran && report.layers.length >= 20, "the analysis ran");
      console.log(`EVENTLOOP idle 2 s: ${describeLoop(idle)}`);
      console.log(`EVENTLOOP analysing resnet18.onnx (${mb} MB, ${report.layers.length} layers, batch ${report.probe.batchSize} x ${report.probe.batches}): ${describeLoop(run)}`);
      const idleWorst = idle.worstBlockedMs ?? idle.worstMs;
      const limit = Math.max(50, 1.5 * idleWorst);
      if (limit > 50) console.log(`EVENTLOOP the idle loop stalled ${idleWorst.toFixed(1)} ms, so the limit is ${limit.toFixed(1)} ms`);
      const worst = run.worstBlockedMs ?? run.worstMs;
      if (worst < limit) return;
      failures.push(`attempt ${attempt}: ${run.worstBlockedMs !== null ? "blocked" : "worst timer delay"} ${worst.toFixed(1)} ms (limit ${limit.toFixed(1)} ms)`);
    }
    assert.fail(`the event loop was blocked in both runs: ${failures.join("; ")}`);
  });

  test("an invalid file gives a model.invalid diagnostic", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "saved", "broken.onnx"));
    await vscode.workspace.fs.writeFile(uri, Buffer.from("this is not a protobuf"));
    await waitFor("model.invalid diagnostic", () => vscode.languages.getDiagnostics(uri).some((d) => d.code === "model.invalid"), 5000);
    await vscode.workspace.fs.delete(uri);
  });

  test("clear diagnostics empties Problems and the tree", async () => {
    await vscode.commands.executeCommand("modelDoctor.clearDiagnostics");
    assert.strictEqual(api.treeChildren().length, 0);
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    assert.strictEqual(vscode.languages.getDiagnostics(uri).length, 0);
  });
});
