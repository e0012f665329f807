import { basename } from "node:path";

/** Prefix of the engine's short-lived model copies (written next to big models for onnxruntime). */
export const TEMP_PREFIX = ".onnx-doctor-";

/** Whether a path is one of the engine's temporary model copies (editors should ignore them). */
export function isEngineTempFile(path: string): boolean {
  return basename(path).startsWith(TEMP_PREFIX);
}
