// Bundles the CLI into one module (dist/berth.mjs): Node then loads one file instead of about a
// hundred, which halves the start-up of every command (it matters for `berth run` latency).
// better-sqlite3 (native) and undici (loaded only by registry commands) stay in node_modules.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/berth.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'undici'],
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
  logLevel: 'warning',
});
chmodSync('dist/berth.mjs', 0o755);
