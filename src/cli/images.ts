import { resolve } from 'node:path';
import type { Command } from 'commander';
import { FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { contentSize, mapLimit, type ResolvedImage, resolveImage, unpackUnderLease } from '../images/index.js';
import type { Image, NamespaceScope } from '../metadata/index.js';
import {
  chainIDs,
  type Digest,
  digestHex,
  familiarName,
  formatReference,
  type HistoryEntry,
  hostPlatform,
  isDigest,
  type Platform,
  parseReference,
  platformMatcher,
  type Reference,
} from '../oci/index.js';
import { parseLogTime } from '../runtime/index.js';
import type { Berth } from '../services/index.js';
import { mountAll, type SnapshotInfo, type SnapshotService, unmount } from '../snapshots/index.js';
import { example, withBerth } from './context.js';
import { humanDuration, humanSize, printJSON, printListing } from './output.js';

/** One image record with what the CLI shows of it; `resolved` is absent when its content is missing. */
interface Row {
  image: Image;
  ref?: Reference;
  resolved?: ResolvedImage;
  /** The layer stacks of the image and, when all are unpacked, the sum of the layers' sizes (docker's number). */
  chainIDs?: Digest[];
  unpackedSize?: number;
  error?: string;
}

async function rows(ns: NamespaceScope, sn?: SnapshotService): Promise<Row[]> {
  const matcher = platformMatcher(hostPlatform());
  // The layer stacks this namespace has, read once: a thousand images share a few.
  const unpacked = new Map(sn?.records.list().map((r) => [r.key, r.snapshot.unpackedSize ?? 0]));
  // Each image needs three small reads (index or manifest, manifest, config): overlap them.
  return mapLimit(ns.images.list(), 16, async (image) => {
    const row: Row = { image };
    try {
      // An image named only by its ID (an unnamed commit or import) is docker's <none>:<none>.
      if (!isDigest(image.name)) row.ref = parseReference(image.name);
    } catch {
      // a name that is not a reference (set through the library): shown as is
    }
    try {
      row.resolved = await resolveImage(ns.content, image.target, matcher);
      row.chainIDs = chainIDs(row.resolved.config.value.rootfs.diff_ids);
      // docker's number, the sum of the layers' unpacked sizes, when every layer stack is unpacked
      if (sn && row.chainIDs.every((c) => unpacked.has(c))) row.unpackedSize = row.chainIDs.reduce((n, c) => n + (unpacked.get(c) ?? 0), 0);
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND') && !hasCode(err, 'INVALID_ARGUMENT')) throw err;
      row.error = (err as Error).message;
    }
    return row;
  });
}

/** The key of the view that `image mount` makes for a directory. */
const mountKey = (target: string) => `mount:${target}`;

function resolvedRow(r: Row, arg: string): Row & { resolved: ResolvedImage } {
  if (!r.resolved) throw new FailedPreconditionError(`image "${arg}": ${r.error}`);
  return r as Row & { resolved: ResolvedImage };
}

const idOf = (r: Row): Digest | undefined => r.resolved?.config.digest;
const createdOf = (r: Row): number => Date.parse(r.resolved?.config.value.created ?? '') || 0;
/** What docker prints as "Untagged:" for a name; nothing for an image named only by its ID. */
const untaggedName = (r: Row): string | undefined =>
  isDigest(r.image.name) ? undefined : r.ref?.tag !== undefined ? `${repoOf(r)}:${r.ref.tag}` : `${repoOf(r)}@${r.image.target.digest}`;
const repoOf = (r: Row): string => (r.ref ? familiarName(r.ref) : isDigest(r.image.name) ? '<none>' : r.image.name);

/** Finds the rows an argument names: a reference, a full or short image ID, or a digest. */
function find(all: Row[], arg: string): Row[] {
  let name: string | undefined;
  try {
    name = formatReference(parseReference(arg));
  } catch {
    // not a reference: maybe an ID
  }
  const byName = all.filter((r) => r.image.name === name || r.image.name === arg);
  if (byName.length) return byName;
  const hex = arg.replace(/^sha256:/, '');
  if (/^[a-f0-9]{4,64}$/.test(hex)) {
    const byId = all.filter((r) => idOf(r) && digestHex(idOf(r) as Digest).startsWith(hex));
    const ids = new Set(byId.map(idOf));
    if (ids.size > 1) throw new InvalidArgumentError(`"${arg}" is ambiguous: it starts ${ids.size} image IDs`);
    if (byId.length) return byId;
  }
  throw new NotFoundError(`No such image: ${arg}`);
}

/** Docker's `path.Match` for the `reference=` filter. */
function globMatch(pattern: string, s: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`).test(s);
}

function filterRows(all: Row[], filters: string[]): Row[] {
  let out = all;
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`invalid filter "${f}": expected key=value`);
    const [key, value] = [f.slice(0, eq), f.slice(eq + 1)];
    switch (key) {
      case 'reference':
        out = out.filter((r) => {
          const repo = repoOf(r);
          return globMatch(value, repo) || (r.ref?.tag !== undefined && globMatch(value, `${repo}:${r.ref.tag}`));
        });
        break;
      case 'before':
      case 'since': {
        const pivot = createdOf(find(all, value)[0] as Row);
        out = out.filter((r) => (key === 'before' ? createdOf(r) < pivot : createdOf(r) > pivot));
        break;
      }
      case 'dangling':
        if (value !== 'true' && value !== 'false') throw new InvalidArgumentError(`invalid filter "${f}": dangling is true or false`);
        out = out.filter((r) => (r.ref?.tag === undefined) === (value === 'true'));
        break;
      case 'label':
      case 'label!': {
        const [k, v] = value.split('=', 2) as [string, string?];
        out = out.filter((r) => {
          const labels = r.resolved?.config.value.config?.Labels ?? {};
          return (k in labels && (v === undefined || labels[k] === v)) === (key === 'label');
        });
        break;
      }
      case 'until': {
        const t = parseLogTime(value);
        out = out.filter((r) => (createdOf(r) || r.image.createdAt.getTime()) < t);
        break;
      }
      default:
        throw new InvalidArgumentError(`invalid filter "${key}": use reference, before, since, dangling, label, label! or until`);
    }
  }
  return out;
}

function inspectJSON(r: Row, all: Row[]): Record<string, unknown> {
  const id = idOf(r);
  const same = id ? all.filter((x) => idOf(x) === id) : [r];
  const c = r.resolved?.config.value;
  return {
    Id: id ?? null,
    RepoTags: same.filter((x) => x.ref?.tag !== undefined).map((x) => `${repoOf(x)}:${x.ref?.tag}`),
    RepoDigests: [...new Set(same.map((x) => `${repoOf(x)}@${x.image.target.digest}`))],
    Created: c?.created ?? null,
    Author: c?.author ?? '',
    Config: c?.config ?? null,
    Architecture: c?.architecture ?? null,
    ...(c?.variant ? { Variant: c.variant } : {}),
    Os: c?.os ?? null,
    Size: r.resolved ? contentSize(r.resolved) : null,
    RootFS: c ? { Type: c.rootfs.type, Layers: c.rootfs.diff_ids } : null,
    Metadata: { LastTagTime: r.image.updatedAt.toISOString() },
    Berth: {
      Name: r.image.name,
      Target: r.image.target,
      IndexDigest: r.resolved?.index?.digest ?? null,
      ManifestDigest: r.resolved?.manifestDesc.digest ?? null,
      ContentSize: r.resolved ? contentSize(r.resolved) : null,
      UnpackedSize: r.unpackedSize ?? null,
      ChainIDs: r.chainIDs ?? [],
      Layers: r.resolved?.manifest.value.layers ?? [],
      ...(r.error ? { Error: r.error } : {}),
    },
  };
}

export function registerImages(program: Command): void {
  const listAction = async (opts: { quiet?: boolean; digests?: boolean; trunc: boolean; filter: string[]; all?: boolean }, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      const list = filterRows(await rows(b.namespace(g.namespace), b.snapshotter(g.namespace)), opts.filter).sort(
        (a, z) => createdOf(z) - createdOf(a),
      );
      const id = (r: Row) => (idOf(r) ? (!opts.trunc ? (idOf(r) as string) : digestHex(idOf(r) as Digest).slice(0, 12)) : '<missing>');
      if (opts.quiet) {
        for (const x of new Set(list.map(id))) process.stdout.write(`${x}\n`);
        return;
      }
      const now = Date.now();
      const headers = ['REPOSITORY', 'TAG', ...(opts.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'CONTENT SIZE', 'UNPACKED SIZE'];
      printListing(
        g.format,
        list,
        headers,
        (r) => [
          repoOf(r),
          r.ref?.tag ?? '<none>',
          ...(opts.digests ? [r.image.target.digest] : []),
          id(r),
          createdOf(r) ? `${humanDuration(now - createdOf(r))} ago` : 'N/A',
          r.resolved ? humanSize(contentSize(r.resolved)) : '-',
          r.unpackedSize !== undefined ? humanSize(r.unpackedSize) : '-',
        ],
        (r) => ({
          name: r.image.name,
          repository: repoOf(r),
          tag: r.ref?.tag ?? null,
          digest: r.image.target.digest,
          id: idOf(r) ?? null,
          created: r.resolved?.config.value.created ?? null,
          contentSize: r.resolved ? contentSize(r.resolved) : null,
          unpackedSize: r.unpackedSize ?? null,
          ...(r.error ? { error: r.error } : {}),
        }),
      );
    });

  const listOptions = (c: Command) =>
    c
      .option('-a, --all', 'show all images (there are no intermediate images to hide)')
      .option('-q, --quiet', 'print only image IDs')
      .option('--digests', 'show digests')
      .option('--no-trunc', 'do not truncate image IDs')
      .option(
        '-f, --filter <key=value>',
        'reference=, before=, since=, dangling=, label= (repeatable)',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      );

  example(
    listOptions(program.command('images').description('List images: content size (containerd, crictl) and unpacked size (docker)')).action(
      listAction,
    ),
    'berth images',
    'berth images --filter reference=busybox --digests --format json',
  );

  const image = program.command('image').description('Manage images');
  example(image, 'berth image ls', 'berth image inspect busybox');
  example(listOptions(image.command('ls').alias('list').description('List images')).action(listAction), 'berth image ls -q');

  example(
    image
      .command('inspect')
      .description('Show images as JSON, with docker-compatible fields')
      .argument('<images...>')
      .action(async (args: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const all = await rows(b.namespace(g.namespace), b.snapshotter(g.namespace));
          printJSON(args.map((a) => inspectJSON(find(all, a)[0] as Row, all)));
        }),
      ),
    'berth image inspect busybox',
  );

  example(
    image
      .command('history')
      .description("Show an image's history: the step that made each layer")
      .argument('<image>')
      .option('--no-trunc', 'do not truncate output')
      .option('-q, --quiet', 'print only image IDs')
      .action(async (arg: string, opts: { trunc: boolean; quiet?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const r = resolvedRow(find(await rows(b.namespace(g.namespace)), arg)[0] as Row, arg);
          const layers = [...r.resolved.manifest.value.layers];
          const history: HistoryEntry[] = r.resolved.config.value.history ?? layers.map(() => ({}));
          const now = Date.now();
          const entries = history.map((h) => ({
            created: h.created ?? null,
            createdBy: h.created_by ?? '',
            size: h.empty_layer ? 0 : (layers.shift()?.size ?? 0),
            comment: h.comment ?? '',
          }));
          entries.reverse();
          const top = idOf(r) as string;
          if (opts.quiet) {
            process.stdout.write(`${opts.trunc ? digestHex(top as Digest).slice(0, 12) : top}\n`);
            return;
          }
          printListing(
            g.format,
            entries,
            ['IMAGE', 'CREATED', 'CREATED BY', 'CONTENT SIZE', 'COMMENT'],
            (e) => [
              e === entries[0] ? (opts.trunc ? digestHex(top as Digest).slice(0, 12) : top) : '<missing>',
              e.created ? `${humanDuration(now - Date.parse(e.created))} ago` : 'N/A',
              opts.trunc && e.createdBy.length > 45 ? `${e.createdBy.slice(0, 44)}…` : e.createdBy,
              humanSize(e.size),
              e.comment,
            ],
            (e) => e,
          );
        }),
      ),
    'berth image history busybox',
  );

  example(
    image
      .command('unpack')
      .description("Unpack an image's layers into snapshots (pull does this unless --no-unpack)")
      .argument('<image>')
      .action(async (arg: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const sn = b.snapshotter(g.namespace);
          const r = resolvedRow(find(await rows(ns), arg)[0] as Row, arg);
          process.stdout.write(`unpacking ${r.image.name} (${r.image.target.digest})...`);
          const res = await unpackUnderLease(ns, sn, r.resolved.manifestDesc);
          process.stdout.write(`done: ${res.applied} of ${res.chainIDs.length} layers applied (${sn.driver})\n`);
        }),
      ),
    'berth image unpack busybox',
    'berth --snapshotter native image unpack busybox',
  );

  example(
    image
      .command('mount')
      .description("Mount an image's filesystem read-only on a directory (unpacking it first when needed)")
      .argument('<image>')
      .argument('<dir>')
      .action(async (arg: string, dir: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const sn = b.snapshotter(g.namespace);
          const r = resolvedRow(find(await rows(ns), arg)[0] as Row, arg);
          const target = resolve(dir);
          const key = mountKey(target);
          const done = await unpackUnderLease(ns, sn, r.resolved.manifestDesc);
          const top = done.chainIDs.at(-1);
          const mounts = await sn.view(key, {
            ...(top ? { parent: top } : {}),
            labels: { 'berth.io/mount-target': target, 'berth.io/image': r.image.name },
          });
          try {
            await mountAll(mounts, target);
          } catch (err) {
            await sn.remove(key);
            throw err;
          }
          process.stdout.write(`${target}\n`);
        }),
      ),
    'berth image mount busybox /mnt/busybox',
  );

  example(
    image
      .command('unmount')
      .alias('umount')
      .description('Unmount a directory that image mount mounted, and drop its view')
      .argument('<dir>')
      .action(async (dir: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const target = resolve(dir);
          const sn = b.snapshotter(g.namespace);
          const key = mountKey(target);
          let info: SnapshotInfo;
          try {
            info = await sn.stat(key);
          } catch (err) {
            if (hasCode(err, 'NOT_FOUND'))
              throw new NotFoundError(`unmount "${target}": not mounted by berth image mount (namespace "${g.namespace}")`);
            throw err;
          }
          if (info.kind === 'view') await unmount(target);
          await sn.remove(key);
          process.stdout.write(`${target}\n`);
        }),
      ),
    'berth image unmount /mnt/busybox',
  );

  const tagAction = async (src: string, dst: string, _o: unknown, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      const ns = b.namespace(g.namespace);
      const r = find(await rows(ns), src)[0] as Row;
      ns.images.put({ name: formatReference(parseReference(dst)), target: r.image.target });
    });
  example(
    program.command('tag').description('Give an image another name').argument('<source>').argument('<target>').action(tagAction),
    'berth tag busybox localhost:5000/busybox:1',
  );
  example(
    image.command('tag').description('Give an image another name').argument('<source>').argument('<target>').action(tagAction),
    'berth image tag busybox mybox:1',
  );

  const rmAction = async (args: string[], opts: { force?: boolean }, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      const ns = b.namespace(g.namespace);
      // docker's answer: the names untagged, then the image's own IDs that are gone (the image ID,
      // then its layer stacks from the top down); gc's other sweepings are not rmi's.
      const layerStacks = new Set<Digest>();
      for (const arg of args) {
        const all = await rows(ns);
        // Names are unique: several matches mean an image ID with several names.
        const matched = find(all, arg);
        if (matched.length > 1 && !opts.force) {
          throw new FailedPreconditionError(
            `conflict: unable to delete ${arg} (must be forced) - image is referenced in multiple repositories`,
          );
        }
        for (const r of matched) {
          ns.images.delete(r.image.name);
          const untagged = untaggedName(r);
          if (untagged) process.stdout.write(`Untagged: ${untagged}\n`);
        }
        const id = idOf(matched[0] as Row);
        if (id && !all.some((x) => idOf(x) === id && !matched.includes(x))) {
          process.stdout.write(`Deleted: ${id}\n`);
          for (const chainID of [...((matched[0] as Row).chainIDs ?? [])].reverse()) layerStacks.add(chainID);
        }
      }
      if (b.settings.gcAfterRemove) {
        const removed = new Set((await b.gc()).snapshots.map((s) => s.name));
        for (const chainID of layerStacks) if (removed.has(chainID)) process.stdout.write(`Deleted: ${chainID}\n`);
      }
    });
  const rmOptions = (c: Command) => c.argument('<images...>').option('-f, --force', 'remove every name of an image ID');
  example(
    rmOptions(program.command('rmi').description('Remove images (names); content goes with garbage collection')).action(rmAction),
    'berth rmi busybox',
  );
  example(rmOptions(image.command('rm').alias('remove').description('Remove images (names)')).action(rmAction), 'berth image rm busybox');
}

/** What `image prune` removed: the names, and the image IDs left without a name. */
export interface PrunedImages {
  untagged: string[];
  deleted: Digest[];
}

/**
 * Removes the images of a namespace that no container uses: the dangling ones (no tag), or with
 * `all` every one; `filters` as docker's (`until=`, `label=`, `label!=`). The content goes with the
 * garbage collection the caller runs next.
 */
export async function pruneImages(b: Berth, namespace: string, opts: { all?: boolean; filters?: string[] } = {}): Promise<PrunedImages> {
  const ns = b.namespace(namespace);
  const all = await rows(ns);
  const used = new Set(ns.containers.list().map((c) => c.imageId));
  const victims = filterRows(
    all.filter((r) => opts.all || r.ref?.tag === undefined),
    opts.filters ?? [],
  ).filter((r) => !used.has(idOf(r) ?? ''));
  const out: PrunedImages = { untagged: [], deleted: [] };
  for (const r of victims) {
    ns.images.delete(r.image.name);
    const untagged = untaggedName(r);
    if (untagged) out.untagged.push(untagged);
  }
  for (const id of new Set(victims.map(idOf))) {
    if (id && !all.some((x) => idOf(x) === id && !victims.includes(x))) out.deleted.push(id);
  }
  return out;
}

/** The image an argument names (a reference, or a full or short image ID), resolved for this host. */
export async function lookupImage(
  ns: NamespaceScope,
  arg: string,
  platform?: Platform,
): Promise<{ name: string; resolved: ResolvedImage }> {
  const matcher = platformMatcher(platform ?? hostPlatform());
  let name: string | undefined;
  try {
    name = formatReference(parseReference(arg));
  } catch {
    // not a reference: maybe an image ID
  }
  if (name !== undefined) {
    try {
      const image = ns.images.get(name);
      return { name, resolved: await resolveImage(ns.content, image.target, matcher) };
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND')) throw err;
    }
  }
  const r = find(await rows(ns), arg)[0] as Row;
  if (platform) return { name: r.image.name, resolved: await resolveImage(ns.content, r.image.target, matcher) };
  return { name: r.image.name, resolved: resolvedRow(r, arg).resolved };
}
