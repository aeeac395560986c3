import { join } from 'node:path';
import { hasCode } from '../errdefs/index.js';
import { pull } from '../images/index.js';
import { formatReference, isDigest, parseReference, type Reference } from '../oci/index.js';
import { authConfigCredentials, type Credentials, type Session } from '../remotes/index.js';
import { findImages, type ImageRow, imageIdOf, imageRows, removeImages } from '../services/index.js';
import { pauseImageName } from './pause-image.js';
import type { Pods } from './pods.js';

// CRI's image service over the `k8s.io` namespace: images by ID, each with every name it has.

/** CRI's Image: one per image ID. `size` is the compressed content (manifest, config, layers), as containerd reports it. */
export interface CriImage {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: string;
  uid?: { value: string };
  username?: string;
  spec: { image: string };
  pinned: boolean;
}

/** CRI's AuthConfig. */
export interface CriAuth {
  username?: string;
  password?: string;
  auth?: string;
  identity_token?: string;
}

/** A reference as kubelet and crictl send it (`alpine`), normalised as docker does (`docker.io/library/alpine:latest`). */
export function normalizeImage(raw: string): Reference {
  const r = parseReference(raw);
  return r.tag === undefined && r.digest === undefined ? { ...r, tag: 'latest' } : r;
}

/** The registry credentials of a CRI AuthConfig. */
export function criCredentials(a: CriAuth | undefined): Credentials | undefined {
  return a && authConfigCredentials({ ...a, ...(a.identity_token ? { identitytoken: a.identity_token } : {}) });
}

/** `repo@sha256:…`: the repository of a name and the digest its record points at (an index for a multi-platform image). */
export function repoDigest(ref: Reference, target: string): string {
  return `${formatReference({ ...ref, tag: undefined, digest: undefined })}@${target}`;
}

function imageOf(rows: ImageRow[]): CriImage {
  const first = rows[0] as ImageRow;
  const r = first.resolved;
  const tags: string[] = [];
  const digests = new Set<string>();
  for (const row of rows) {
    if (!row.ref) continue;
    if (row.ref.tag !== undefined) tags.push(formatReference(row.ref));
    digests.add(repoDigest(row.ref, row.image.target.digest));
  }
  const user = r?.config.value.config?.User?.split(':')[0] ?? '';
  // `image size`'s Content: the index (when the name points at one), the manifest, config and layers
  const index = r?.index ? r.target.size : 0;
  const size = r ? index + r.manifestDesc.size + r.config.raw.length + r.manifest.value.layers.reduce((n, l) => n + l.size, 0) : 0;
  return {
    id: imageIdOf(first) as string,
    repo_tags: tags.sort(),
    repo_digests: [...digests].sort(),
    size: String(size),
    ...(/^\d+$/.test(user) ? { uid: { value: user } } : user ? { username: user } : {}),
    spec: { image: imageIdOf(first) as string },
    pinned: rows.some((x) => x.image.name === pauseImageName),
  };
}

/** Rows grouped by image ID (rows whose content is missing are left out). */
function byId(rows: ImageRow[]): Map<string, ImageRow[]> {
  const out = new Map<string, ImageRow[]>();
  for (const row of rows) {
    const id = imageIdOf(row);
    if (!id) continue;
    out.set(id, [...(out.get(id) ?? []), row]);
  }
  return out;
}

/** ListImages, with ImageFilter's image (a reference or an ID). */
export async function listImages(pods: Pods, filter?: string): Promise<CriImage[]> {
  const rows = await imageRows(pods.ns);
  const groups = byId(rows);
  if (filter) {
    const ids = new Set<string | undefined>(findImagesOrNone(rows, filter).map(imageIdOf));
    for (const id of groups.keys()) if (!ids.has(id)) groups.delete(id);
  }
  return [...groups.values()].map(imageOf);
}

function findImagesOrNone(rows: ImageRow[], arg: string): ImageRow[] {
  try {
    // `alpine` is docker.io/library/alpine:latest here, as kubelet means it
    let name = arg;
    try {
      if (!isDigest(arg) && !/^[a-f0-9]{12,64}$/.test(arg)) name = formatReference(normalizeImage(arg));
    } catch {}
    return findImages(rows, name);
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND') || hasCode(err, 'INVALID_ARGUMENT')) return [];
    throw err;
  }
}

/** ImageStatus: the image a reference or ID names, with every name it has; undefined when there is none. */
export async function imageStatus(pods: Pods, ref: string): Promise<{ image: CriImage; row: ImageRow } | undefined> {
  const rows = await imageRows(pods.ns);
  const found = findImagesOrNone(rows, ref);
  const id = found[0] ? imageIdOf(found[0]) : undefined;
  if (!id) return undefined;
  const group = byId(rows).get(id) as ImageRow[];
  return { image: imageOf(group), row: found[0] as ImageRow };
}

/** PullImage: pulls and unpacks into the namespace; the image ID. */
export async function pullImage(pods: Pods, raw: string, session: Session): Promise<string> {
  const reference = normalizeImage(raw);
  const r = await pull(pods.ns, reference, {
    session,
    unpack: pods.berth.snapshotter(pods.ns.name),
    discardUnpackedLayers: !pods.berth.settings.keepCompressedLayers,
  });
  const st = await imageStatus(pods, formatReference(r.reference));
  return st?.image.id ?? r.image.target.digest;
}

/** RemoveImage: the image and every name it has (containerd's way). A missing image is not an error. */
export async function removeImage(pods: Pods, ref: string): Promise<void> {
  const st = await imageStatus(pods, ref);
  if (!st) return;
  await removeImages(pods.berth, pods.ns.name, [st.image.id], { force: true });
}

/** ImageFsInfo: the snapshotter's directory and what the namespace's layer stacks use in it. */
export async function imageFsInfo(pods: Pods): Promise<{ mountpoint: string; usedBytes: number; inodesUsed: number }> {
  const sn = pods.berth.snapshotter(pods.ns.name);
  let usedBytes = 0;
  let inodesUsed = 0;
  for await (const info of sn.list()) {
    if (info.kind !== 'committed') continue;
    const u = await sn.usage(info.name).catch(() => ({ size: 0, inodes: 0 }));
    usedBytes += u.size;
    inodesUsed += u.inodes;
  }
  return { mountpoint: join(pods.berth.root, 'snapshots', sn.driver), usedBytes, inodesUsed };
}
