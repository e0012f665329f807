/** Reported in every report's `tool` field; keep in step with package.json. */
export const TOOL_NAME = "onnx-doctor";
export const TOOL_VERSION = "0.1.0";
