import { InvalidArgumentError } from '../errdefs/index.js';
import { type Digest, parseDigest } from './digest.js';

/**
 * A fully qualified image reference: `domain/path[:tag][@digest]`, as docker normalises it.
 * At least one of tag and digest is set once parsed.
 */
export interface Reference {
  readonly domain: string;
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const defaultDomain = 'docker.io';
export const defaultTag = 'latest';
/** docker's limit on the length of a repository name (domain and path). */
export const maxNameLength = 255;

// The grammar of distribution/reference.
const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])`;
const domainRe = new RegExp(`^${host}(?::[0-9]+)?$`);
const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestShapeRe = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const hex64Re = /^[a-f0-9]{64}$/;

function invalid(s: string, why: string): never {
  const shown = s.length > 300 ? `${s.slice(0, 297)}...` : s;
  throw new InvalidArgumentError(`invalid reference ${JSON.stringify(shown)}: ${why}`);
}

/** Splits the domain from a name the way docker does: the first component is a domain when it has a dot or port, or is localhost. */
function splitDomain(name: string): [string, string] {
  const i = name.indexOf('/');
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return [defaultDomain, name];
  }
  return [first, name.slice(i + 1)];
}

/**
 * Parses a reference as `docker pull` reads it and normalises it: `busybox` is
 * `docker.io/library/busybox:latest`; `latest` is added only when there is no tag and no digest.
 * @throws InvalidArgumentError for anything outside the grammar, upper case in the path, or a bare 64-hex id
 * @example formatReference(parseReference('localhost:5000/a/b@sha256:…'))
 */
export function parseReference(s: string): Reference {
  if (typeof s !== 'string' || s.length === 0) invalid(String(s), 'empty');
  if (hex64Re.test(s)) invalid(s, 'cannot specify a 64-byte hexadecimal string as a repository name');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestShapeRe.test(d)) invalid(s, 'bad digest');
    try {
      digest = parseDigest(d);
    } catch (err) {
      invalid(s, (err as Error).message);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagRe.test(tag)) invalid(s, `bad tag ${JSON.stringify(tag)}`);
  }
  if (rest.length === 0) invalid(s, 'missing repository name');
  let [domain, path] = splitDomain(rest);
  if (!domainRe.test(domain)) invalid(s, `bad registry host ${JSON.stringify(domain)}`);
  if (path.toLowerCase() !== path) invalid(s, 'repository name must be lowercase');
  if (!pathRe.test(path)) invalid(s, 'bad repository name');
  if (domain === 'index.docker.io') domain = defaultDomain;
  if (domain === defaultDomain && !path.includes('/')) path = `library/${path}`;
  if (domain.length + 1 + path.length > maxNameLength) invalid(s, `repository name longer than ${maxNameLength} characters`);
  if (tag === undefined && digest === undefined) tag = defaultTag;
  const ref: { domain: string; path: string; tag?: string; digest?: Digest } = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `domain/path`: the repository a registry serves, without tag or digest. */
export function repositoryOf(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The full, canonical text: `docker.io/library/busybox:latest`. */
export function formatReference(r: Reference): string {
  return repositoryOf(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** The short form docker shows: `busybox:latest`, `user/app:1`, `localhost:5000/x:y`. */
export function familiarName(r: Reference): string {
  if (r.domain !== defaultDomain) return repositoryOf(r);
  if (r.path.startsWith('library/') && r.path.indexOf('/', 8) === -1) return r.path.slice(8);
  // A first component that reads as a host (`0.0/x`) keeps the domain, or it would parse as one.
  return splitDomain(r.path)[0] === defaultDomain ? r.path : repositoryOf(r);
}

/** The short form with tag and digest: what `docker images` and error messages print. */
export function familiarString(r: Reference): string {
  return familiarName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}
