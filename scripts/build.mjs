// Bundles the CLI, the extension, its engine worker and the report webview with esbuild.
// onnxruntime-node stays external: it loads a native binary relative to its own package folder.
// `node scripts/build.mjs --tests` also bundles the VS Code integration tests (test/vscode -> dist/test).
import { build } from "esbuild";
import { chmodSync, readdirSync } from "node:fs";

const node = { bundle: true, platform: "node", target: "node20", format: "cjs", sourcemap: true, logLevel: "warning" };

await build({ ...node, entryPoints: { cli: "src/cli/main.ts" }, outdir: "dist", external: ["onnxruntime-node"] });
chmodSync("dist/cli.js", 0o755);

// The extension host side (imports vscode) and the worker it forks (runs the engine).
await build({ ...node, entryPoints: { extension: "extension/extension.ts", worker: "extension/worker/worker.ts" }, outdir: "dist", external: ["vscode", "onnxruntime-node"] });

// The report UI for the webview and the standalone HTML export (one self-contained script).
await build({
  entryPoints: { webview: "webview/main.ts" }, outdir: "dist", bundle: true, platform: "browser", format: "iife",
  target: ["chrome120"], minify: true, sourcemap: false, logLevel: "warning", legalComments: "none",
});

if (process.argv.includes("--tests")) {
  // One folder per suite, each with its own copy of the mocha runner (index.js loads the *.test.js beside it):
  // dist/test (main integration suite), dist/test/untrusted (restricted mode), dist/test/vsix (the packaged .vsix).
  const entryPoints = {};
  for (const [out, dir] of [["", "test/vscode"], ["untrusted/", "test/vscode/untrusted"], ["vsix/", "test/vscode/vsix"]]) {
    entryPoints[`${out}index`] = "test/vscode/index.ts";
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".test.ts"))) entryPoints[`${out}${f.slice(0, -3)}`] = `${dir}/${f}`;
  }
  await build({ ...node, entryPoints, outdir: "dist/test", external: ["vscode", "mocha", "onnxruntime-node"] });
}
