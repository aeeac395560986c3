// `npm run bench [-- NAME...]`: runs the benchmarks side by side with their peers and prints ratios.
import { buildBench } from './build.js';
import { contentAdd } from './content-add.js';
import { criBench } from './cri.js';
import { daemonBench } from './daemon.js';
import { diskBench } from './disk.js';
import { type Comparison, printComparison } from './harness.js';
import { networkBench } from './network.js';
import { pullBench } from './pull.js';
import { runBench } from './run.js';
import { storeBench } from './store.js';
import { unpackBench, unpackLabBench } from './unpack.js';

const benchmarks: Record<string, () => Promise<Comparison[]>> = {
  'content-add': () => contentAdd(),
  pull: () => pullBench(),
  unpack: () => unpackBench(),
  'unpack-lab': () => unpackLabBench(),
  run: () => runBench(),
  disk: () => diskBench(),
  daemon: () => daemonBench(),
  network: () => networkBench(),
  build: () => buildBench(),
  cri: () => criBench(),
  store: () => storeBench(),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in benchmarks));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(benchmarks).join(', ')}\n`);
  process.exit(2);
}
const results: Comparison[] = [];
process.stdout.write(`berth benchmarks, ${new Date().toISOString()}, node ${process.version}\n\n`);
for (const [name, run] of Object.entries(benchmarks)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  for (const c of await run()) {
    results.push(c);
    printComparison(c);
  }
  process.stdout.write('\n');
}
if (process.env.BENCH_JSON) process.stdout.write(`${JSON.stringify(results)}\n`);
