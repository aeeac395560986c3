// `store explain` and `store import`: docker's and containerd's stores on this machine, read from
// disk without their daemons.
import type { Command } from 'commander';
import { InvalidArgumentError } from '../errdefs/index.js';
import { type Digest, digestHex, familiarName, hostPlatform, parseReference, platformMatcher } from '../oci/index.js';
import { importStore } from '../services/index.js';
import { readContainerdStore, readDockerStore, type StoreImage, type StoreKind, type StoreReport } from '../stores/index.js';
import { example, globalsOf, withBerth } from './context.js';
import { humanSize, printJSON, renderTable } from './output.js';
import { ProgressView } from './progress.js';

const defaultRoots: Record<StoreKind, string> = { docker: '/var/lib/docker', containerd: '/var/lib/containerd' };

function parseKind(kind: string): StoreKind {
  if (kind !== 'docker' && kind !== 'containerd') throw new InvalidArgumentError(`store kind "${kind}": expected docker or containerd`);
  return kind;
}

/** Reads a store; `namespaces` applies to containerd's (all when undefined). */
export function readStore(kind: StoreKind, root: string, namespaces?: string[]): Promise<StoreReport> {
  const matcher = platformMatcher(hostPlatform());
  return kind === 'docker'
    ? readDockerStore(root, { matcher })
    : readContainerdStore(root, { matcher, ...(namespaces ? { namespaces } : {}) });
}

/** An image as the JSON output gives it: every size view, without the bookkeeping of parts. */
const imageJSON = ({ parts: _parts, store: _store, ...img }: StoreImage) => img;

/** The images both reports hold, by image ID: the same config, hence the same layers, in each. */
export function commonImages(a: StoreReport, b: StoreReport) {
  const ids = new Set(b.images.map((i) => i.id));
  const out = [];
  for (const id of new Set(a.images.map((i) => i.id))) {
    if (!ids.has(id)) continue;
    const x = a.images.find((i) => i.id === id) as StoreImage;
    const y = b.images.find((i) => i.id === id) as StoreImage;
    const [docker, containerd] = x.store === 'docker' ? [x, y] : [y, x];
    out.push({
      id,
      names: {
        [a.kind]: a.images.filter((i) => i.id === id).map((i) => i.name),
        [`${b.kind}${b.kind === a.kind ? ' (2)' : ''}`]: b.images.filter((i) => i.id === id).map((i) => i.name),
      },
      layers: x.layers.map((l) => l.diffID),
      dockerImages: docker.unpackedSize,
      ctrImages: containerd.contentSize,
      unpacked: containerd.unpackedSize,
    });
  }
  return out;
}

const dash = (n: number | null | undefined) => (n === null || n === undefined ? '-' : humanSize(n));

function displayName(name: string): [string, string] {
  try {
    const r = parseReference(name);
    return [familiarName(r), r.tag ?? (r.digest ? `@${r.digest.slice(7, 19)}` : '<none>')];
  } catch {
    return [name, '<none>'];
  }
}

const explanations: Record<string, string[]> = {
  containerd: [
    'CONTENT is what `ctr images ls` and `crictl images` show: the index, manifest, config and compressed',
    'layers as the registry sent them. containerd keeps those blobs, and also unpacks each layer into a',
    'snapshot: UNPACKED is the bytes of the files the snapshots hold, what `docker images` shows for the',
    'same image. ON DISK is both, the blobs and the snapshots (as containerd measured them at commit, in',
    'blocks, like du). SHARED is what other images use too; namespaces share blobs, but each namespace',
    'unpacks its own snapshots.',
  ],
  docker: [
    "docker's classic store keeps no compressed layers: a pull unpacks each layer and drops the blob, so",
    'there is no CONTENT here (ctr and crictl would show it). UNPACKED is what `docker images` and',
    "`docker image inspect` show: the bytes of the layers' files. ON DISK is the layer directories as du",
    'counts them: whole blocks, directories and overlay bookkeeping, so small layers take more than their',
    "files. SHARED is what other images use too (docker system df shows it in files' bytes).",
  ],
};

function printReport(r: StoreReport): string[] {
  const ns = r.kind === 'containerd' || r.layout.startsWith('containerd');
  const rows = r.images.map((i) => {
    const [repo, tag] = displayName(i.name);
    return [
      ...(ns ? [i.namespace] : []),
      repo,
      tag,
      digestHex(i.id).slice(0, 12),
      dash(i.contentSize),
      dash(i.unpackedSize),
      humanSize(i.onDisk),
      humanSize(i.unique),
      humanSize(i.shared),
    ];
  });
  const t = r.totals;
  return [
    `${r.kind} store at ${r.root} (${r.layout}${r.namespaces.length ? `; namespaces ${r.namespaces.join(', ')}` : ''})`,
    '',
    renderTable(
      [...(ns ? ['NAMESPACE'] : []), 'REPOSITORY', 'TAG', 'IMAGE ID', 'CONTENT', 'UNPACKED', 'ON DISK', 'UNIQUE', 'SHARED'],
      rows,
    ).trimEnd(),
    '',
    `Store: ${t.images} images` +
      (t.blobs ? `; content store ${t.blobs.count} blobs, ${humanSize(t.blobs.size)}` : '') +
      `; ${ns ? 'snapshots' : 'layers'} ${t.snapshots.count}, ${humanSize(t.snapshots.size)}`,
    '',
    ...(explanations[ns ? 'containerd' : 'docker'] as string[]),
  ];
}

export function registerStore(program: Command): void {
  const store = program.command('store').description("Explain or import docker's and containerd's stores on this machine, read from disk");
  example(
    store,
    'berth store explain docker',
    'berth store explain containerd -n k8s.io --compare docker',
    'berth store import containerd /var/lib/containerd --source-namespace k8s.io',
  );

  example(
    store
      .command('explain')
      .description(
        "Every image of docker's or containerd's store with the size each tool shows (content, unpacked), what it takes on disk, and what it shares; read-only, while the daemons run",
      )
      .argument('<kind>', 'docker or containerd')
      .argument('[root]', 'the store (default /var/lib/docker or /var/lib/containerd)')
      .option('-A, --all-namespaces', 'every containerd namespace (the default without -n)')
      .option('--compare <kind[=root]>', 'also read the other store, and explain the images both hold')
      .action(async (kindArg: string, rootArg: string | undefined, opts: { allNamespaces?: boolean; compare?: string }, cmd: Command) => {
        const g = globalsOf(cmd);
        const kind = parseKind(kindArg);
        const source = cmd.getOptionValueSourceWithGlobals('namespace');
        const given = source === 'cli' || (source === 'env' && !!process.env.BERTH_NAMESPACE);
        const namespaces = opts.allNamespaces || !given ? undefined : [g.namespace];
        const report = await readStore(kind, rootArg ?? defaultRoots[kind], namespaces);
        let other: StoreReport | undefined;
        if (opts.compare) {
          const [k, r] = opts.compare.split('=', 2) as [string, string | undefined];
          const otherKind = parseKind(k);
          other = await readStore(otherKind, r ?? defaultRoots[otherKind]);
        }
        const common = other ? commonImages(report, other) : undefined;
        if (g.format === 'json') {
          printJSON({
            ...report,
            images: report.images.map(imageJSON),
            ...(other ? { compare: { ...other, images: other.images.map(imageJSON) }, common } : {}),
          });
          return;
        }
        const out = printReport(report);
        if (other && common) {
          out.push('', ...printReport(other), '');
          if (common.length === 0) out.push('No image ID is in both stores.');
          else {
            out.push(
              'In both stores (same image ID: the same config, so the same layers, byte for byte):',
              '',
              renderTable(
                ['IMAGE ID', 'NAMES', 'LAYERS', 'DOCKER IMAGES', 'CTR / CRICTL', 'UNPACKED IN CONTAINERD'],
                common.map((c) => [
                  digestHex(c.id as Digest).slice(0, 12),
                  Object.values(c.names)
                    .flat()
                    .map((n) => displayName(n).join(':'))
                    .filter((n, i, all) => all.indexOf(n) === i)
                    .join(', '),
                  String(c.layers.length),
                  dash(c.dockerImages),
                  dash(c.ctrImages),
                  dash(c.unpacked),
                ]),
              ).trimEnd(),
              '',
              'The same image shows two sizes because each tool counts a different thing: docker images counts',
              'the unpacked files (its classic store keeps nothing else); ctr and crictl count the compressed',
              'content as pulled. Both are right; containerd keeps both on disk.',
            );
          }
        }
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    'berth store explain docker /var/lib/docker --format json',
    'berth store explain containerd --compare docker',
  );

  example(
    store
      .command('import')
      .description(
        'Bring images of a docker or containerd store into berth without a registry: blobs are verified and hard-linked (copied across filesystems); docker layers are rebuilt exactly (tar-split) and compressed; every image keeps its ID',
      )
      .argument('<kind>', 'docker or containerd')
      .argument('<root>', 'the store, e.g. /var/lib/docker')
      .argument('[images...]', 'names or IDs (default: every image)')
      .option('--source-namespace <ns>', "containerd's namespace to read (default: default; moby for docker's containerd image store)")
      .option('--copy', "copy containerd's blobs even where hard links could share them (same filesystem)")
      .option('-q, --quiet', 'no progress')
      .action(
        async (
          kindArg: string,
          root: string,
          images: string[],
          opts: { sourceNamespace?: string; copy?: boolean; quiet?: boolean },
          cmd: Command,
        ) =>
          withBerth(cmd, async (b, g) => {
            const progress = new ProgressView({ quiet: opts.quiet || g.format === 'json' });
            const done = await importStore(b, g.namespace, parseKind(kindArg), root, {
              images,
              ...(opts.sourceNamespace ? { sourceNamespace: opts.sourceNamespace } : {}),
              ...(opts.copy ? { copy: true } : {}),
              onProgress: (e, label) => {
                progress.update(e, label);
                if (e.total > 0 && e.offset === e.total) progress.finish(e.ref, 'Done');
              },
              onImage: (e) => {
                if (g.format !== 'json') process.stdout.write(`Imported ${e.name} (${e.id})\n`);
              },
            });
            if (g.format === 'json') printJSON(done);
          }),
      ),
    'berth store import docker /var/lib/docker busybox:latest',
  );
}
