import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

// The SPA imports 'backward' exactly as an app would; here it resolves to the source.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  resolve: {
    conditions: ['source'],
    alias: [
      { find: /^backward$/, replacement: fileURLToPath(new URL('../src/client/index.ts', import.meta.url)) },
      { find: /^backward\/shared$/, replacement: fileURLToPath(new URL('../src/shared/index.ts', import.meta.url)) },
    ],
  },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  logLevel: 'warn',
})
