// Bundles the CLI into one CommonJS file (dist/berth.cjs): Node then loads one file instead of
// about a hundred ES modules, which halves the start-up of every command (it matters for `berth run`
// latency); CommonJS skips the ES module loader's own cost. better-sqlite3 (native) and gRPC (only
// by the daemon's CRI) stay in node_modules.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/berth.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['better-sqlite3', '@grpc/grpc-js', '@grpc/proto-loader', 'ws'],
  // import.meta.url (the package root is found from it) becomes the bundle's own URL.
  define: { 'import.meta.url': '__berthUrl' },
  banner: { js: "const __berthUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
chmodSync('dist/berth.cjs', 0o755);
