import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError } from '../errdefs/index.js';

/** A validated content digest, `algorithm:hex`, e.g. `sha256:e3b0…`. */
export type Digest = string & { readonly __digest: unique symbol };

/** The registered algorithms of the OCI image spec, with their encoded lengths. */
export const digestAlgorithms = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof digestAlgorithms;

const HEX = /^[a-f0-9]+$/;

/**
 * Validates `s` as a digest: a known algorithm and lower-case hex of its exact length.
 * @throws InvalidArgumentError naming what is wrong
 * @example parseDigest('sha256:' + 'a'.repeat(64))
 */
export function parseDigest(s: string): Digest {
  if (typeof s !== 'string') throw new InvalidArgumentError('invalid digest: not a string');
  const colon = s.indexOf(':');
  if (colon <= 0) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(clip(s))}: expected "algorithm:hex"`);
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (!Object.hasOwn(digestAlgorithms, algorithm)) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(clip(s))}: unsupported algorithm "${clip(algorithm)}"`);
  }
  const want = digestAlgorithms[algorithm as DigestAlgorithm];
  if (hex.length !== want || !HEX.test(hex)) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(clip(s))}: ${algorithm} needs ${want} lower-case hex characters`);
  }
  return s as Digest;
}

/** Whether `s` is a valid digest. */
export function isDigest(s: unknown): s is Digest {
  if (typeof s !== 'string') return false;
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm;
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** The digest of bytes held in memory (manifests, configs: small documents). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/**
 * Hashes a stream as it passes; the state can be copied to check a prefix without
 * stopping. One per blob being read or written.
 */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;
  #size = 0;
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  }
  /** Bytes hashed so far. */
  get size(): number {
    return this.#size;
  }
  /** The digest of what was hashed so far; the digester can go on hashing. */
  digest(): Digest {
    return `${this.algorithm}:${this.#hash.copy().digest('hex')}` as Digest;
  }
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
