import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// One build for the browser (served by `hangar serve` on the API port) and the desktop webview.
// Absolute asset paths: the engine also serves index.html for path routes such as /logs/NAME.
export default defineConfig({
  base: '/',
  plugins: [svelte()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false },
  server: {
    // `npm run dev`: proxy the API to a running engine (HANGAR_API, default 127.0.0.1:13001).
    proxy: { '/api': { target: `http://${process.env.HANGAR_API ?? '127.0.0.1:13001'}`, changeOrigin: true } },
  },
  test: { include: ['src/**/*.test.ts'], environment: 'node' },
});
