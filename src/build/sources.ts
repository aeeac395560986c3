import { createHash } from 'node:crypto';
import { type BigIntStats, createReadStream, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import dockerignore from '@balena/dockerignore';
import { lstatOrUndefined, SMALL_FILE } from '../archive/index.js';
import { normalize } from '../dockerfile/index.js';
import { NotFoundError } from '../errdefs/index.js';
import { resolveInRoot } from '../runtime/index.js';

// Where COPY and ADD read from: the build context (a directory, filtered by .dockerignore) or
// another stage's or image's filesystem. Every path is resolved inside its root: a symlink in a
// context never reaches outside it.

/** A matched source: its path in the tree, and the host path it resolves to inside the root. */
export interface Source {
  rel: string;
  host: string;
  st: BigIntStats;
}

export class SourceTree {
  readonly root: string;
  readonly #ignore: ReturnType<typeof dockerignore.default> | undefined;
  readonly #reincludes: boolean;

  /** What the tree is, for messages: the build context, or the stage or image `--from` named. */
  readonly #what: string;

  constructor(root: string, ignoreFile?: string, from?: string) {
    this.root = root;
    this.#what = from === undefined ? 'the build context' : `"${from}"`;
    const lines = (ignoreFile ?? '')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    // a CommonJS module: its default export is `module.exports`, whose `default` is the factory too
    this.#ignore = lines.length ? dockerignore.default().add(lines) : undefined;
    this.#reincludes = lines.some((l) => l.startsWith('!'));
  }

  /** The build context in `dir`, with its `.dockerignore` when it has one. */
  static context(dir: string): SourceTree {
    let text: string | undefined;
    try {
      text = readFileSync(join(dir, '.dockerignore'), 'utf8');
    } catch {
      text = undefined;
    }
    return new SourceTree(dir, text);
  }

  /** Whether .dockerignore leaves `rel` (relative to the root, no leading slash) out. */
  ignored(rel: string): boolean {
    return rel !== '' && this.#ignore !== undefined && this.#ignore.ignores(rel);
  }

  /**
   * The sources a COPY or ADD argument names: a path relative to the root (a leading `/` or `..`
   * stays at the root), with `*`, `?` and `[…]` matched per component as docker's filepath.Match does.
   * @throws NotFoundError when nothing matches
   */
  match(pattern: string): Source[] {
    const clean = normalize(pattern).slice(1);
    const parts = clean === '' ? [] : clean.split('/');
    let found: string[] = [''];
    for (const part of parts) {
      const next: string[] = [];
      for (const dir of found) {
        if (!hasGlob(part)) {
          next.push(dir ? `${dir}/${part}` : part);
          continue;
        }
        const host = this.#resolve(dir);
        let names: string[];
        try {
          names = readdirSync(host);
        } catch {
          continue;
        }
        const re = globRegExp(part);
        for (const n of names.sort()) if (re.test(n)) next.push(dir ? `${dir}/${n}` : n);
      }
      found = next;
    }
    const out: Source[] = [];
    for (const rel of found) {
      if (this.ignored(rel)) continue;
      const host = this.#resolve(rel);
      const st = lstatOrUndefined(host);
      if (st) out.push({ rel, host, st });
    }
    if (out.length === 0) {
      throw new NotFoundError(`"${pattern}": not found${this.#ignore ? ' (or excluded by .dockerignore)' : ''} in ${this.#what}`);
    }
    return out;
  }

  #resolve(rel: string): string {
    return resolveInRoot(this.root, `/${rel}`);
  }

  /**
   * A source and, for a directory, everything under it that .dockerignore keeps, parents before
   * children, names sorted. `rel` is the path in the tree, `sub` the path below the source.
   */
  *walk(src: Source): Generator<{ rel: string; sub: string; host: string; st: BigIntStats }> {
    const self = this;
    function* under(host: string, rel: string, sub: string): Generator<{ rel: string; sub: string; host: string; st: BigIntStats }> {
      for (const name of readdirSync(host).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const s = sub ? `${sub}/${name}` : name;
        const h = join(host, name);
        const st = lstatOrUndefined(h);
        if (!st) continue;
        const skip = self.ignored(r);
        // An ignored directory is still walked when a `!` pattern may take something in it back.
        if (skip && !(st.isDirectory() && self.#reincludes)) continue;
        if (!skip) yield { rel: r, sub: s, host: h, st };
        if (st.isDirectory()) yield* under(h, r, s);
      }
    }
    yield { rel: src.rel, sub: '', host: src.host, st: src.st };
    if (src.st.isDirectory()) yield* under(src.host, src.rel, '');
  }

  /** A digest of what COPY would take from `sources`: names, types, modes, link targets and bytes (not times, not owners). */
  async digest(sources: Source[]): Promise<string> {
    const h = createHash('sha256');
    for (const src of sources) {
      for (const e of this.walk(src)) {
        const st = e.st;
        h.update(`${e.rel}\0${e.sub}\0${Number(st.mode)}\0`);
        if (st.isSymbolicLink()) h.update(`L${readlinkSync(e.host)}\0`);
        else if (st.isFile()) {
          h.update(`F${st.size}\0`);
          if (st.size <= SMALL_FILE) h.update(readFileSync(e.host));
          else for await (const chunk of createReadStream(e.host, { highWaterMark: 1 << 18 })) h.update(chunk as Buffer);
        }
      }
    }
    return h.digest('hex');
  }
}

const hasGlob = (s: string) => /[*?[]/.test(s);

/** Go's filepath.Match for one path component: `*`, `?`, `[a-z]`, `[^…]`, `\` escapes. */
export function globRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
