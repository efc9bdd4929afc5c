import path from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run build:dashboard` → dashboard/dist, served by the API server at `/` (graphql/dashboard-static.ts).
// `npx vite --config dashboard/vite.config.ts` serves it in development with /graphql proxied to
// the API server at LADDER_API_URL (default http://127.0.0.1:4000).
const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: path.join(here, 'dist'),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { '/graphql': process.env.LADDER_API_URL ?? 'http://127.0.0.1:4000' },
  },
});
