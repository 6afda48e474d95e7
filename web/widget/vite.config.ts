import { defineConfig } from "vite";

// Paths are relative to web/, where `npm run build` runs.
// widget.js: one self-contained script (livekit-client included) that the control plane serves
// from web/dist beside the console, at /widget.js. Run after the console build (which empties
// web/dist).
export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: false,
    lib: {
      entry: "widget/src/script.ts",
      name: "StimmWidget",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
  },
});
