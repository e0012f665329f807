// The packaged extension: scripts/vscode-e2e.sh (part "vsix") builds the .vsix with `npm run package`,
// installs it with `code-server --install-extension` into a fresh extensions folder and starts code-server
// with `--locale zh-cn`; the extension under development is only a stub that carries this test.
import * as assert from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { ModelDoctorApi } from "../../../extension/extension";
import type { Report } from "../../../src/report/types";
import { EXT_ID, waitFor, ws } from "../helpers";

let api: ModelDoctorApi;
let ext: vscode.Extension<ModelDoctorApi>;

function walk(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p, base) : [path.relative(base, p)];
  });
}

suite("ONNX Model Doctor installed from the .vsix", () => {
  test("the installed extension activates (from the extensions folder, not the source tree)", async () => {
    ext = vscode.extensions.getExtension<ModelDoctorApi>(EXT_ID)!;
    assert.ok(ext, "installed");
    const expectedDir = process.env.MD_VSIX_EXTENSIONS_DIR;
    if (expectedDir) assert.ok(ext.extensionPath.startsWith(expectedDir), `${ext.extensionPath} is under ${expectedDir}`);
    assert.ok(!fs.existsSync(path.join(ext.extensionPath, "src")), "no sources in the package");
    api = await ext.activate();
    assert.ok(ext.isActive);
    const cmds = await vscode.commands.getCommands(true);
    assert.ok(cmds.includes("modelDoctor.analyze"));
  });

  test("the package holds only this platform's onnxruntime binary, and no sources, tests or source maps", () => {
    const files = walk(ext.extensionPath);
    const bins = files.filter((f) => f.includes(`onnxruntime-node${path.sep}bin${path.sep}`));
    const here = path.join("napi-v6", process.platform, process.arch);
    assert.ok(bins.length > 0 && bins.every((f) => f.includes(here)), `binaries: ${bins.join(", ")}`);
    const unwanted = files.filter((f) => /\.(ts|map|onnx|npy|py)$/.test(f) || /^(src|test|webview|scripts)[\\/]/.test(f));
    assert.deepStrictEqual(unwanted, []);
    assert.ok(files.includes(path.join("l10n", "bundle.l10n.zh-cn.json")));
    console.log(`VSIX installed: ${files.length} files, ${bins.map((b) => path.basename(b)).join(", ")}`);
  });

  test("the packaged onnxruntime binary runs the probe and the report opens", async () => {
    const uri = vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx"));
    const report = await vscode.commands.executeCommand<Report | undefined>("modelDoctor.analyze", uri);
    assert.ok(report?.probe.ran, "the model ran in the packaged worker");
    assert.ok(vscode.languages.getDiagnostics(uri).some((d) => d.code === "activation.vanishing"));
    await waitFor("the report editor", () => api.editor.openPanels(uri) > 0, 15000);
  });

  test("runtime strings follow the display language (l10n bundle)", () => {
    const lang = vscode.env.language;
    const stored = api.store.get(vscode.Uri.file(path.join(ws(), "models", "tanh_tiny_init.onnx")))!;
    const groups = api.treeChildren({ kind: "model", stored });
    const label = String(api.tree.getTreeItem(groups[0]).label);
    const description = String(api.tree.getTreeItem({ kind: "model", stored }).description);
    console.log(`LOCALE ${lang}: tree "${label}", "${description}"`);
    if (process.env.MD_EXPECT_LOCALE) assert.strictEqual(lang.toLowerCase(), process.env.MD_EXPECT_LOCALE);
    const { errors, warnings } = stored.report.summary;
    assert.ok(warnings >= 11, `${warnings} warnings`);
    if (lang.toLowerCase() === "zh-cn") {
      assert.strictEqual(label, `警告 (${warnings})`);
      assert.strictEqual(description, `${errors} 个错误，${warnings} 个警告`);
    } else {
      assert.strictEqual(label, `Warnings (${warnings})`);
    }
  });
});
