// The images of a namespace as docker shows them: the rows `images` lists, the names and IDs an
// argument matches, docker's filters, the inspect and history documents, tag, rmi and prune.
import { FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { contentSize, mapLimit, type ResolvedImage, resolveImage } from '../images/index.js';
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
import type { SnapshotService } from '../snapshots/index.js';
import type { Berth } from './berth.js';

/** One image record with what the CLI shows of it; `resolved` is absent when its content is missing. */
export interface ImageRow {
  image: Image;
  ref?: Reference;
  resolved?: ResolvedImage;
  /** The layer stacks of the image and, when all are unpacked, the sum of the layers' sizes (docker's number). */
  chainIDs?: Digest[];
  unpackedSize?: number;
  error?: string;
}

export async function imageRows(ns: NamespaceScope, sn?: SnapshotService): Promise<ImageRow[]> {
  const matcher = platformMatcher(hostPlatform());
  // The layer stacks this namespace has, read once: a thousand images share a few.
  const unpacked = new Map(sn?.records.list().map((r) => [r.key, r.snapshot.unpackedSize ?? 0]));
  // Each image needs three small reads (index or manifest, manifest, config): overlap them.
  return mapLimit(ns.images.list(), 16, async (image) => {
    const row: ImageRow = { image };
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

export function resolvedRow(r: ImageRow, arg: string): ImageRow & { resolved: ResolvedImage } {
  if (!r.resolved) throw new FailedPreconditionError(`image "${arg}": ${r.error}`);
  return r as ImageRow & { resolved: ResolvedImage };
}

export const imageIdOf = (r: ImageRow): Digest | undefined => r.resolved?.config.digest;
export const imageCreated = (r: ImageRow): number => Date.parse(r.resolved?.config.value.created ?? '') || 0;
/** What docker prints as "Untagged:" for a name; nothing for an image named only by its ID. */
export const untaggedName = (r: ImageRow): string | undefined =>
  isDigest(r.image.name) ? undefined : r.ref?.tag !== undefined ? `${repoOf(r)}:${r.ref.tag}` : `${repoOf(r)}@${r.image.target.digest}`;
export const repoOf = (r: ImageRow): string => (r.ref ? familiarName(r.ref) : isDigest(r.image.name) ? '<none>' : r.image.name);

/** Finds the rows an argument names: a reference, a full or short image ID, or a digest. */
export function findImages(all: ImageRow[], arg: string): ImageRow[] {
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
    const byId = all.filter((r) => imageIdOf(r) && digestHex(imageIdOf(r) as Digest).startsWith(hex));
    const ids = new Set(byId.map(imageIdOf));
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

export function filterImages(all: ImageRow[], filters: string[]): ImageRow[] {
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
        const pivot = imageCreated(findImages(all, value)[0] as ImageRow);
        out = out.filter((r) => (key === 'before' ? imageCreated(r) < pivot : imageCreated(r) > pivot));
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
        out = out.filter((r) => (imageCreated(r) || r.image.createdAt.getTime()) < t);
        break;
      }
      default:
        throw new InvalidArgumentError(`invalid filter "${key}": use reference, before, since, dangling, label, label! or until`);
    }
  }
  return out;
}

export function inspectImage(r: ImageRow, all: ImageRow[]): Record<string, unknown> {
  const id = imageIdOf(r);
  const same = id ? all.filter((x) => imageIdOf(x) === id) : [r];
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
  const all = await imageRows(ns);
  const used = new Set(ns.containers.list().map((c) => c.imageId));
  const victims = filterImages(
    all.filter((r) => opts.all || r.ref?.tag === undefined),
    opts.filters ?? [],
  ).filter((r) => !used.has(imageIdOf(r) ?? ''));
  const out: PrunedImages = { untagged: [], deleted: [] };
  for (const r of victims) {
    ns.images.delete(r.image.name);
    const untagged = untaggedName(r);
    if (untagged) out.untagged.push(untagged);
  }
  for (const id of new Set(victims.map(imageIdOf))) {
    if (id && !all.some((x) => imageIdOf(x) === id && !victims.includes(x))) out.deleted.push(id);
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
  const r = findImages(await imageRows(ns), arg)[0] as ImageRow;
  if (platform) return { name: r.image.name, resolved: await resolveImage(ns.content, r.image.target, matcher) };
  return { name: r.image.name, resolved: resolvedRow(r, arg).resolved };
}

/** One step of an image's history, newest first as docker lists them. */
export interface HistoryItem {
  created: string | null;
  createdBy: string;
  /** The compressed size of the layer the step made (0 for a step that made none). */
  size: number;
  comment: string;
}

export function imageHistory(r: ImageRow & { resolved: ResolvedImage }): HistoryItem[] {
  const layers = [...r.resolved.manifest.value.layers];
  const history: HistoryEntry[] = r.resolved.config.value.history ?? layers.map(() => ({}));
  return history
    .map((h) => ({
      created: h.created ?? null,
      createdBy: h.created_by ?? '',
      size: h.empty_layer ? 0 : (layers.shift()?.size ?? 0),
      comment: h.comment ?? '',
    }))
    .reverse();
}

/** Gives the image `src` names the name `dst` too. @throws NotFoundError, InvalidArgumentError */
export async function tagImage(ns: NamespaceScope, src: string, dst: string): Promise<void> {
  const r = findImages(await imageRows(ns), src)[0] as ImageRow;
  ns.images.put({ name: formatReference(parseReference(dst)), target: r.image.target });
}

/** docker's answer to rmi, one entry per line it prints. */
export type RemovedImage = { Untagged: string } | { Deleted: string };

/**
 * Removes the names `args` give; an image ID whose every name is gone is reported deleted, then
 * (after the collection the root's settings ask for) its own layer stacks that went with it, from
 * the top down. gc's other sweepings are not rmi's. @throws FailedPreconditionError for an ID with
 * several names, unless forced
 */
export async function removeImages(b: Berth, namespace: string, args: string[], opts: { force?: boolean } = {}): Promise<RemovedImage[]> {
  const ns = b.namespace(namespace);
  const out: RemovedImage[] = [];
  const layerStacks = new Set<Digest>();
  for (const arg of args) {
    const all = await imageRows(ns);
    // Names are unique: several matches mean an image ID with several names.
    const matched = findImages(all, arg);
    if (matched.length > 1 && !opts.force) {
      throw new FailedPreconditionError(
        `conflict: unable to delete ${arg} (must be forced) - image is referenced in multiple repositories`,
      );
    }
    for (const r of matched) {
      ns.images.delete(r.image.name);
      const untagged = untaggedName(r);
      if (untagged) out.push({ Untagged: untagged });
    }
    const id = imageIdOf(matched[0] as ImageRow);
    if (id && !all.some((x) => imageIdOf(x) === id && !matched.includes(x))) {
      out.push({ Deleted: id });
      for (const chainID of [...((matched[0] as ImageRow).chainIDs ?? [])].reverse()) layerStacks.add(chainID);
    }
  }
  if (b.settings.gcAfterRemove) {
    const removed = new Set((await b.gc()).snapshots.map((s) => s.name));
    for (const chainID of layerStacks) if (removed.has(chainID)) out.push({ Deleted: chainID });
  }
  return out;
}
