import { InvalidArgumentError } from '../errdefs/index.js';
import { FieldReader } from './descriptor.js';
import { type Digest, digestOf } from './digest.js';
import type { Parsed } from './manifest.js';

/** The largest image config berth reads; real ones are kilobytes, long histories a few hundred. */
export const maxConfigSize = 16 << 20;

/** The execution parameters of an image (`config` in the OCI image config). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  /** Docker's extensions, which BuildKit writes after the OCI fields. */
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  [key: string]: unknown;
}

/** HEALTHCHECK: `Test` is `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", cmd]`; durations in nanoseconds. */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An OCI / Docker image config: the document whose digest is the image ID. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  [key: string]: unknown;
}

/**
 * Parses an image config, checking the fields berth relies on and keeping everything else.
 * @throws InvalidArgumentError naming the bad field
 */
export function parseImageConfig(raw: Uint8Array): Parsed<ImageConfig> {
  if (raw.byteLength > maxConfigSize) {
    throw new InvalidArgumentError(`invalid image config: ${raw.byteLength} bytes, larger than the ${maxConfigSize} allowed`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (err) {
    throw new InvalidArgumentError(`invalid image config: not UTF-8 JSON: ${(err as Error).message}`);
  }
  const r = new FieldReader('image config');
  const o = r.object(json, '$');
  r.string(o.architecture, 'architecture');
  r.string(o.os, 'os');
  r.optString(o.variant, 'variant');
  r.optString(o.created, 'created');
  r.optString(o.author, 'author');
  const rootfs = r.object(o.rootfs, 'rootfs');
  if (rootfs.type !== 'layers') r.fail('rootfs.type', 'expected "layers"');
  for (const [i, d] of r.array(rootfs.diff_ids, 'rootfs.diff_ids').entries()) r.digest(d, `rootfs.diff_ids[${i}]`);
  if (o.config !== undefined && o.config !== null) {
    const c = r.object(o.config, 'config');
    r.optString(c.User, 'config.User');
    r.stringArray(c.Env, 'config.Env');
    r.stringArray(c.Entrypoint, 'config.Entrypoint');
    r.stringArray(c.Cmd, 'config.Cmd');
    r.optString(c.WorkingDir, 'config.WorkingDir');
    r.stringMap(c.Labels, 'config.Labels');
    r.optString(c.StopSignal, 'config.StopSignal');
    if (c.ExposedPorts !== undefined && c.ExposedPorts !== null) r.object(c.ExposedPorts, 'config.ExposedPorts');
    if (c.Volumes !== undefined && c.Volumes !== null) r.object(c.Volumes, 'config.Volumes');
  }
  r.optArray(o.history, 'history')?.forEach((h, i) => {
    const e = r.object(h, `history[${i}]`);
    r.optString(e.created, `history[${i}].created`);
    r.optString(e.created_by, `history[${i}].created_by`);
    if (e.empty_layer !== undefined && typeof e.empty_layer !== 'boolean') r.fail(`history[${i}].empty_layer`, 'expected a boolean');
  });
  return { raw, digest: digestOf(raw), value: o as ImageConfig };
}

/** chain(L1) = diffID(L1); chain(L1..Ln) = sha256(chain(L1..Ln-1) + " " + diffID(Ln)). */
export function chainIDs(diffIDs: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : digestOf(`${out[out.length - 1]} ${d}`));
  return out;
}
