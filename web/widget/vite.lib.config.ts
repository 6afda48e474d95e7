import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Paths are relative to web/, where `npm run build` runs.
// The npm package's module: the React component and mountWidget, with React and livekit-client
// left to the host application.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "widget/dist",
    lib: {
      entry: "widget/src/index.ts",
      formats: ["es"],
      fileName: () => "stimm-widget.js",
    },
    rollupOptions: { external: ["react", "react/jsx-runtime", "livekit-client"] },
  },
});
