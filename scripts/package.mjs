// `npm run package [-- --target T ...]`: builds the bundles and one platform-specific .vsix per target
// (default: this machine's platform, e.g. linux-x64) with @vscode/vsce. onnxruntime-node ships the native
// binaries of every platform (291 MB); each .vsix carries only its own platform's folder, selected by an
// ignore file derived from .vscodeignore. Output: dist/onnx-model-doctor-<version>-<target>.vsix; the last
// stdout line of each target is `VSIX <path> <bytes>`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { platform, arch } from "node:process";
import path from "node:path";
import { unzipSync } from "fflate";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
process.chdir(root);
const pkg = JSON.parse(readFileSync("package.json", "utf8"));

/** vsce target -> onnxruntime-node binary folder (bin/napi-v6/<platform>/<arch>). */
const TARGETS = {
  "linux-x64": "linux/x64",
  "linux-arm64": "linux/arm64",
  "win32-x64": "win32/x64",
  "win32-arm64": "win32/arm64",
  "darwin-arm64": "darwin/arm64",
};

const args = process.argv.slice(2);
const targets = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--target" || args[i] === "-t") targets.push(args[++i]);
  else if (args[i].startsWith("--target=")) targets.push(args[i].slice(9));
  else if (args[i] === "--all") targets.push(...Object.keys(TARGETS));
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}
if (!targets.length) targets.push(`${platform}-${arch}`);
for (const t of targets) {
  if (!TARGETS[t]) {
    console.error(`no onnxruntime-node binary for target ${t}; supported: ${Object.keys(TARGETS).join(", ")}`);
    process.exit(2);
  }
}

execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });

const base = readFileSync(".vscodeignore", "utf8").split("\n").filter((l) => !l.includes("onnxruntime-node/bin/"));
mkdirSync("dist", { recursive: true });
for (const target of targets) {
  const bin = `node_modules/onnxruntime-node/bin/napi-v6/${TARGETS[target]}`;
  if (!existsSync(bin)) {
    console.error(`${bin} is missing: install onnxruntime-node (ONNXRUNTIME_NODE_INSTALL=skip npm ci) first`);
    process.exit(1);
  }
  const ignoreFile = `dist/.vscodeignore-${target}`;
  writeFileSync(ignoreFile, [...base, `!${bin}/**`, ""].join("\n"));
  const out = `dist/${pkg.name}-${pkg.version}-${target}.vsix`;
  execFileSync(process.execPath, [
    "node_modules/@vscode/vsce/vsce", "package", "--target", target, "--ignoreFile", ignoreFile, "--out", out,
    "--allow-missing-repository", "--no-rewrite-relative-links",
  ], { stdio: ["ignore", "inherit", "inherit"] });
  // What the .vsix really holds (names only; nothing is decompressed).
  const files = [];
  unzipSync(readFileSync(out), { filter: (f) => { if (f.name.startsWith("extension/")) files.push(f.name.slice(10)); return false; } });
  const foreign = files.filter((f) => f.includes("onnxruntime-node/bin/") && !f.startsWith(`${bin}/`));
  const sources = files.filter((f) => /^(src|webview|test|scripts)\//.test(f) || /\.(ts|mts|map|py|onnx|npy)$/.test(f) || /^extension\/.*\.ts$/.test(f));
  if (foreign.length || sources.length) {
    console.error(`unexpected files in the package: ${[...foreign, ...sources].join(", ")}`);
    process.exit(1);
  }
  console.log(`${files.length} files under extension/ (the .vsix adds its two manifest files); onnxruntime-node binaries: ${files.filter((f) => f.startsWith(bin)).map((f) => path.basename(f)).join(", ")}`);
  console.log(`VSIX ${out} ${statSync(out).size}`);
}
