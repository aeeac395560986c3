import { InvalidArgumentError } from '../errdefs/index.js';
import { type Annotations, type Descriptor, FieldReader, readDescriptor } from './descriptor.js';
import { type Digest, digestOf } from './digest.js';
import { isIndex, isManifest, isSchema1, MediaType } from './media-types.js';

/** The largest manifest or index berth reads, as containerd and the registry cap them (4 MiB). */
export const maxManifestSize = 4 << 20;

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Annotations;
}

export interface Index {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Annotations;
}

/** A parsed document kept beside the exact bytes it came from: digests are over `raw`, never re-serialised JSON. */
export interface Parsed<T> {
  readonly raw: Uint8Array;
  readonly digest: Digest;
  readonly value: T;
}

function decodeJSON(raw: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (err) {
    throw new InvalidArgumentError(`invalid ${what}: not UTF-8 JSON: ${(err as Error).message}`);
  }
}

function refuseSchema1(o: Record<string, unknown>, mediaType: string | undefined): void {
  if (o.schemaVersion === 1 || (mediaType !== undefined && isSchema1(mediaType))) {
    throw new InvalidArgumentError(
      'unsupported manifest: Docker image manifest schema 1 is deprecated and not supported; push the image again with a current client (schema 2 or OCI)',
    );
  }
}

/** The document kind declared by its own mediaType, or by the one the transport gave when the document has none. */
function declaredType(r: FieldReader, o: Record<string, unknown>, hint: string | undefined): string | undefined {
  const own = r.optString(o.mediaType, 'mediaType');
  if (own !== undefined && hint !== undefined && own !== hint && !isSchema1(hint)) {
    r.fail('mediaType', `"${own}" does not match the declared type "${hint}"`);
  }
  return own ?? hint;
}

function readManifest(r: FieldReader, o: Record<string, unknown>, mediaType: string): Manifest {
  if (o.schemaVersion !== 2) r.fail('schemaVersion', 'expected 2');
  if ('manifests' in o) r.fail('manifests', 'an image manifest has no manifests (is this an index?)');
  const layers = r.array(o.layers, 'layers').map((l, i) => readDescriptor(r, l, `layers[${i}]`));
  const m: Manifest = { schemaVersion: 2, mediaType, config: readDescriptor(r, o.config, 'config'), layers };
  const artifactType = r.optString(o.artifactType, 'artifactType');
  if (artifactType) m.artifactType = artifactType;
  if (o.subject !== undefined && o.subject !== null) m.subject = readDescriptor(r, o.subject, 'subject');
  const annotations = r.stringMap(o.annotations, 'annotations');
  if (annotations) m.annotations = annotations;
  return m;
}

function readIndex(r: FieldReader, o: Record<string, unknown>, mediaType: string): Index {
  if (o.schemaVersion !== 2) r.fail('schemaVersion', 'expected 2');
  if ('layers' in o || 'config' in o) r.fail('layers', 'an index has no config or layers (is this a manifest?)');
  const manifests = r.array(o.manifests, 'manifests').map((m, i) => readDescriptor(r, m, `manifests[${i}]`));
  const x: Index = { schemaVersion: 2, mediaType, manifests };
  const artifactType = r.optString(o.artifactType, 'artifactType');
  if (artifactType) x.artifactType = artifactType;
  if (o.subject !== undefined && o.subject !== null) x.subject = readDescriptor(r, o.subject, 'subject');
  const annotations = r.stringMap(o.annotations, 'annotations');
  if (annotations) x.annotations = annotations;
  return x;
}

function checkSize(raw: Uint8Array, what: string): void {
  if (raw.byteLength > maxManifestSize) {
    throw new InvalidArgumentError(`invalid ${what}: ${raw.byteLength} bytes, larger than the ${maxManifestSize} allowed`);
  }
}

/**
 * Parses an image manifest (OCI or Docker schema 2). `mediaType` is what the transport declared
 * (Content-Type, descriptor), used when the document carries none.
 * @throws InvalidArgumentError naming the bad field; schema 1 is refused
 */
export function parseManifest(raw: Uint8Array, mediaType?: string): Parsed<Manifest> {
  checkSize(raw, 'manifest');
  const r = new FieldReader('manifest');
  const o = r.object(decodeJSON(raw, 'manifest'), '$');
  refuseSchema1(o, mediaType);
  const mt = declaredType(r, o, mediaType) ?? MediaType.ociManifest;
  if (!isManifest(mt)) r.fail('mediaType', `"${mt}" is not an image manifest`);
  return { raw, digest: digestOf(raw), value: readManifest(r, o, mt) };
}

/** Parses an image index (OCI) or manifest list (Docker). @throws InvalidArgumentError */
export function parseIndex(raw: Uint8Array, mediaType?: string): Parsed<Index> {
  checkSize(raw, 'index');
  const r = new FieldReader('index');
  const o = r.object(decodeJSON(raw, 'index'), '$');
  refuseSchema1(o, mediaType);
  const mt = declaredType(r, o, mediaType) ?? MediaType.ociIndex;
  if (!isIndex(mt)) r.fail('mediaType', `"${mt}" is not an index`);
  return { raw, digest: digestOf(raw), value: readIndex(r, o, mt) };
}

export type ManifestOrIndex = { kind: 'manifest'; doc: Parsed<Manifest> } | { kind: 'index'; doc: Parsed<Index> };

/**
 * Parses a document that may be either kind, as a registry answers a tag: by its declared
 * media type, or by its shape when none is declared (an OCI index may omit mediaType).
 */
export function parseManifestOrIndex(raw: Uint8Array, mediaType?: string): ManifestOrIndex {
  checkSize(raw, 'manifest');
  const r = new FieldReader('manifest');
  const o = r.object(decodeJSON(raw, 'manifest'), '$');
  refuseSchema1(o, mediaType);
  const mt = declaredType(r, o, mediaType);
  const looksIndex = mt !== undefined ? isIndex(mt) : Array.isArray(o.manifests);
  if (mt !== undefined && !isIndex(mt) && !isManifest(mt)) {
    r.fail('mediaType', `"${mt}" is neither an image manifest nor an index`);
  }
  if (looksIndex) {
    return { kind: 'index', doc: { raw, digest: digestOf(raw), value: readIndex(new FieldReader('index'), o, mt ?? MediaType.ociIndex) } };
  }
  return { kind: 'manifest', doc: { raw, digest: digestOf(raw), value: readManifest(r, o, mt ?? MediaType.ociManifest) } };
}
