import { InvalidArgumentError } from '../errdefs/index.js';
import { type Digest, parseDigest } from './digest.js';
import type { Platform } from './platform.js';

export type Annotations = Record<string, string>;

/** Points at content: what it is, its digest and its exact size. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Annotations;
  platform?: Platform;
  artifactType?: string;
}

/** Reads untrusted JSON values and names the field at fault in every error. */
export class FieldReader {
  readonly #what: string;
  constructor(what: string) {
    this.#what = what;
  }
  fail(path: string, problem: string): never {
    throw new InvalidArgumentError(`invalid ${this.#what}: ${path}: ${problem}`);
  }
  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'expected an object');
    return v as Record<string, unknown>;
  }
  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'expected a string');
    return v;
  }
  optString(v: unknown, path: string): string | undefined {
    return v === undefined || v === null ? undefined : this.string(v, path);
  }
  size(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(path, 'expected a non-negative integer');
    return v;
  }
  digest(v: unknown, path: string): Digest {
    const s = this.string(v, path);
    try {
      return parseDigest(s);
    } catch (err) {
      return this.fail(path, (err as Error).message);
    }
  }
  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'expected an array');
    return v;
  }
  optArray(v: unknown, path: string): unknown[] | undefined {
    return v === undefined || v === null ? undefined : this.array(v, path);
  }
  stringMap(v: unknown, path: string): Record<string, string> | undefined {
    if (v === undefined || v === null) return undefined;
    const o = this.object(v, path);
    for (const [k, x] of Object.entries(o)) this.string(x, `${path}[${JSON.stringify(k)}]`);
    return o as Record<string, string>;
  }
  stringArray(v: unknown, path: string): string[] | undefined {
    const a = this.optArray(v, path);
    a?.forEach((x, i) => {
      this.string(x, `${path}[${i}]`);
    });
    return a as string[] | undefined;
  }
}

/** Validates a descriptor from untrusted JSON. */
export function readDescriptor(r: FieldReader, v: unknown, path: string): Descriptor {
  const o = r.object(v, path);
  const d: Descriptor = {
    mediaType: r.string(o.mediaType, `${path}.mediaType`),
    digest: r.digest(o.digest, `${path}.digest`),
    size: r.size(o.size, `${path}.size`),
  };
  const urls = r.stringArray(o.urls, `${path}.urls`);
  if (urls) d.urls = urls;
  const annotations = r.stringMap(o.annotations, `${path}.annotations`);
  if (annotations) d.annotations = annotations;
  if (o.platform !== undefined && o.platform !== null) {
    const p = r.object(o.platform, `${path}.platform`);
    d.platform = {
      os: r.string(p.os, `${path}.platform.os`),
      architecture: r.string(p.architecture, `${path}.platform.architecture`),
    };
    const variant = r.optString(p.variant, `${path}.platform.variant`);
    if (variant) d.platform.variant = variant;
    const osVersion = r.optString(p['os.version'], `${path}.platform["os.version"]`);
    if (osVersion) d.platform['os.version'] = osVersion;
    const osFeatures = r.stringArray(p['os.features'], `${path}.platform["os.features"]`);
    if (osFeatures) d.platform['os.features'] = osFeatures;
  }
  const artifactType = r.optString(o.artifactType, `${path}.artifactType`);
  if (artifactType) d.artifactType = artifactType;
  return d;
}

/** Validates a descriptor given by a caller (e.g. in JSON on the command line). */
export function parseDescriptor(v: unknown): Descriptor {
  return readDescriptor(new FieldReader('descriptor'), v, 'descriptor');
}
