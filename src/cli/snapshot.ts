import type { Command } from 'commander';
import { hasCode } from '../errdefs/index.js';
import { resolveImage } from '../images/index.js';
import { chainIDs, hostPlatform, platformMatcher } from '../oci/index.js';
import type { SnapshotInfo } from '../snapshots/index.js';
import { example, withBerth } from './context.js';
import { humanSize, printJSON, printListing } from './output.js';

export function registerSnapshot(program: Command): void {
  const snapshot = program
    .command('snapshot')
    .alias('snapshots')
    .description("Manage snapshots: the unpacked layer stacks (named by chainID) and containers' writable layers");
  example(snapshot, 'berth snapshot ls', 'berth --snapshotter native snapshot tree');

  example(
    snapshot
      .command('ls')
      .alias('list')
      .description('List snapshots')
      .action(async (_o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const all: SnapshotInfo[] = [];
          for await (const s of b.snapshotter(g.namespace).list()) all.push(s);
          printListing(
            g.format,
            all,
            ['KEY', 'PARENT', 'KIND'],
            (s) => [s.name, s.parent ?? '', s.kind],
            (s) => s,
          );
        }),
      ),
    'berth snapshot ls --format json',
  );

  example(
    snapshot
      .command('info')
      .description('Show a snapshot as JSON')
      .argument('<key>')
      .action(async (key: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const sn = b.snapshotter(g.namespace);
          const info = await sn.stat(key);
          const row = sn.row(key);
          printJSON({ ...info, snapshotter: sn.driver, id: row.id, unpackedSize: row.unpackedSize, mounts: await sn.mounts(key) });
        }),
      ),
    'berth snapshot info sha256:5a1b…',
  );

  example(
    snapshot
      .command('usage')
      .description('Show the disk usage of snapshots (each directory alone)')
      .argument('[keys...]')
      .action(async (keys: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const sn = b.snapshotter(g.namespace);
          if (keys.length === 0) for await (const s of sn.list()) keys.push(s.name);
          const rows = [];
          for (const key of keys) rows.push({ key, ...(await sn.usage(key)) });
          printListing(
            g.format,
            rows,
            ['KEY', 'SIZE', 'INODES'],
            (r) => [r.key, humanSize(r.size), String(r.inodes)],
            (r) => r,
          );
        }),
      ),
    'berth snapshot usage',
  );

  example(
    snapshot
      .command('rm')
      .alias('remove')
      .description('Remove snapshots (not while others build on them)')
      .argument('<keys...>')
      .action(async (keys: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const sn = b.snapshotter(g.namespace);
          for (const key of keys) {
            await sn.remove(key);
            process.stdout.write(`${key}\n`);
          }
        }),
      ),
    'berth snapshot rm "extract-1a2b3c sha256:…"',
  );

  example(
    snapshot
      .command('tree')
      .description('Show the parent chains of the snapshots and the images that use them')
      .action(async (_o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const sn = b.snapshotter(g.namespace);
          const all: SnapshotInfo[] = [];
          for await (const s of sn.list()) all.push(s);
          const usedBy = new Map<string, string[]>();
          const matcher = platformMatcher(hostPlatform());
          for (const image of ns.images.list()) {
            try {
              const r = await resolveImage(ns.content, image.target, matcher);
              const top = chainIDs(r.config.value.rootfs.diff_ids).at(-1);
              if (top) usedBy.set(top, [...(usedBy.get(top) ?? []), image.name]);
            } catch (err) {
              if (!hasCode(err, 'NOT_FOUND') && !hasCode(err, 'INVALID_ARGUMENT')) throw err;
            }
          }
          const children = new Map<string, SnapshotInfo[]>();
          for (const s of all) children.set(s.parent ?? '', [...(children.get(s.parent ?? '') ?? []), s]);
          interface Node {
            name: string;
            kind: string;
            images: string[];
            children: Node[];
          }
          const build = (s: SnapshotInfo): Node => ({
            name: s.name,
            kind: s.kind,
            images: usedBy.get(s.name) ?? [],
            children: (children.get(s.name) ?? []).map(build),
          });
          const roots = all.filter((s) => s.parent === undefined || !all.some((p) => p.name === s.parent)).map(build);
          if (g.format === 'json') return printJSON(roots);
          const lines: string[] = [];
          const walk = (n: Node, depth: number) => {
            const tag = [n.kind !== 'committed' ? n.kind : '', ...n.images].filter(Boolean).join(', ');
            lines.push(`${depth === 0 ? '' : `${'  '.repeat(depth - 1)}\\_ `}${n.name}${tag ? ` [${tag}]` : ''}`);
            for (const c of n.children) walk(c, depth + 1);
          };
          for (const r of roots) walk(r, 0);
          process.stdout.write(lines.length ? `${lines.join('\n')}\n` : '');
        }),
      ),
    'berth snapshot tree',
  );
}
