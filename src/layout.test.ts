import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from './sys/index.js';

// The layout rules of STYLE.md §1, read from the sources: a folder is imported through its
// index.ts, test code stays out of the shipped folders, and imports have no cycles.

const src = join(packageRoot, 'src');

interface SourceFile {
  /** Path under src/, e.g. `content/local-store.ts`. */
  path: string;
  folder: string;
  isTest: boolean;
  /** Relative imports, resolved to paths under src/ (`.ts`). */
  imports: string[];
  /** Non-relative imports (`node:test`, packages). */
  external: string[];
}

function sources(): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.ts')) {
        const text = readFileSync(full, 'utf8');
        const specs = [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gms), ...text.matchAll(/\bimport\('([^']+)'\)/g)].map(
          (m) => m[1] as string,
        );
        const path = relative(src, full);
        out.push({
          path,
          folder: path.includes('/') ? (path.split('/')[0] as string) : '.',
          isTest: e.name.endsWith('.test.ts'),
          imports: specs.filter((s) => s.startsWith('.')).map((s) => relative(src, resolve(dirname(full), s)).replace(/\.js$/, '.ts')),
          external: specs.filter((s) => !s.startsWith('.')),
        });
      }
    }
  };
  walk(src);
  return out;
}

/** A cycle in `edges` (node → its successors), as the path that closes it, or undefined. */
function findCycle(edges: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of edges.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

const shipped = () => sources().filter((f) => !f.isTest && f.folder !== 'testutil');

// testutil/ is the exception: test helpers, each module imported by its name.
test('layout: another folder is imported through its index.ts', () => {
  const bad = sources().flatMap((f) =>
    f.imports
      .filter((i) => i.includes('/') && i.split('/')[0] !== f.folder && !i.startsWith('testutil/') && !/^[\w-]+\/index\.ts$/.test(i))
      .map((i) => `${f.path} → ${i}`),
  );
  assert.deepEqual(bad, []);
});

test('layout: shipped folders import neither testutil/ nor node:test', () => {
  const bad = shipped().flatMap((f) => [
    ...f.imports.filter((i) => i.startsWith('testutil/')).map((i) => `${f.path} → ${i}`),
    ...f.external.filter((x) => x === 'node:test' || x === 'node:assert' || x === 'node:assert/strict').map((x) => `${f.path} → ${x}`),
  ]);
  assert.deepEqual(bad, []);
});

test('layout: no import cycles, between files or between folders', () => {
  const files = new Map<string, Set<string>>();
  const folders = new Map<string, Set<string>>();
  for (const f of shipped()) {
    files.set(f.path, new Set(f.imports));
    const deps = folders.get(f.folder) ?? new Set<string>();
    for (const i of f.imports) {
      const to = i.includes('/') ? (i.split('/')[0] as string) : '.';
      if (to !== f.folder) deps.add(to);
    }
    folders.set(f.folder, deps);
  }
  assert.equal(findCycle(files)?.join(' → '), undefined);
  assert.equal(findCycle(folders)?.join(' → '), undefined);
});
