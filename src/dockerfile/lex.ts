import { InvalidArgumentError } from '../errdefs/index.js';

/** Variables for substitution: a name's value, or undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

export interface LexOpts {
  /** The escape character (the `escape` directive): `\` or `` ` ``. */
  escape?: string;
  /** Keep quotes in the words (heredoc detection looks at them). */
  rawQuotes?: boolean;
  /** Leave `$NAME` as written when NAME is not set. */
  skipUnset?: boolean;
  /** A here-document's body: quotes are plain characters, the escape character only escapes `$` and itself. */
  heredoc?: boolean;
}

/**
 * Docker's word processing for Dockerfile arguments: quotes ('…' literal, "…" with `$` and escapes),
 * the escape character, and substitution of `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`,
 * `${V:?msg}`. `word` gives one string (spaces kept); `words` splits on unquoted white space after
 * substitution, as the builder does for COPY sources and EXPOSE.
 */
export class ShellLex {
  readonly escape: string;
  readonly #opts: LexOpts;

  constructor(opts: LexOpts = {}) {
    this.escape = opts.escape ?? '\\';
    this.#opts = opts;
  }

  /** @throws InvalidArgumentError for an unterminated quote or a bad substitution */
  word(text: string, env: Lookup): string {
    return this.#scan(text, env).word;
  }

  words(text: string, env: Lookup): string[] {
    return this.#scan(text, env).words;
  }

  #scan(text: string, env: Lookup) {
    const o = this.#opts;
    return new Scan(text, env, this.escape, o.rawQuotes ?? false, o.skipUnset ?? false, o.heredoc ?? false).run();
  }
}

const isSpace = (c: string) => /\s/.test(c);
const isNameChar = (c: string) => /[\p{L}\p{N}_]/u.test(c);
const special = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  char(c: string): void {
    if (isSpace(c)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else this.raw(c);
  }
  raw(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  text(s: string): void {
    for (const c of s) this.char(c);
  }
  done(): string[] {
    if (this.word.length > 0) this.words.push(this.word);
    this.word = '';
    return this.words;
  }
}

class Scan {
  #i = 0;
  constructor(
    readonly src: string,
    readonly env: Lookup,
    readonly esc: string,
    readonly rawQuotes: boolean,
    readonly skipUnset: boolean,
    readonly heredoc: boolean,
  ) {}

  #peek(): string | undefined {
    return this.src[this.#i];
  }
  #next(): string | undefined {
    return this.src[this.#i++];
  }

  run(): { word: string; words: string[] } {
    const r = this.#until(undefined);
    return r;
  }

  #until(stop: string | undefined): { word: string; words: string[] } {
    let result = '';
    const words = new Words();
    for (let c = this.#peek(); c !== undefined; c = this.#peek()) {
      if (stop !== undefined && c === stop) {
        this.#next();
        return { word: result, words: words.done() };
      }
      if (this.heredoc && c === this.esc) {
        this.#next();
        const n = this.#peek();
        if (n === '$' || n === this.esc) {
          this.#next();
          result += n;
          words.raw(n);
        } else {
          result += c;
          words.raw(c);
        }
        continue;
      }
      if (c === '$' || (!this.heredoc && (c === "'" || c === '"'))) {
        const s = c === "'" ? this.#single() : c === '"' ? this.#double() : this.#dollar();
        result += s;
        if (c === '$') words.text(s);
        else words.raw(s);
        continue;
      }
      this.#next();
      if (c === this.esc) {
        const n = this.#next();
        if (n === undefined) break;
        words.raw(n);
        result += n;
        continue;
      }
      words.char(c);
      result += c;
    }
    if (stop !== undefined) throw new InvalidArgumentError(`unexpected end of statement while looking for matching ${stop}`);
    return { word: result, words: words.done() };
  }

  #single(): string {
    this.#next();
    let out = '';
    for (;;) {
      const c = this.#next();
      if (c === undefined) throw new InvalidArgumentError('unexpected end of statement while looking for matching single-quote');
      if (c === "'") return this.rawQuotes ? `'${out}'` : out;
      out += c;
    }
  }

  #double(): string {
    this.#next();
    let out = '';
    for (;;) {
      const c = this.#peek();
      if (c === undefined) throw new InvalidArgumentError('unexpected end of statement while looking for matching double-quote');
      if (c === '"') {
        this.#next();
        return this.rawQuotes ? `"${out}"` : out;
      }
      if (c === '$') {
        out += this.#dollar();
        continue;
      }
      this.#next();
      if (c === this.esc) {
        const n = this.#peek();
        if (n === undefined) continue;
        if (n === '"' || n === '$' || n === this.esc) {
          this.#next();
          out += n;
          continue;
        }
      }
      out += c;
    }
  }

  #lookup(name: string, original: string): string {
    const v = this.env(name);
    if (v === undefined && this.skipUnset) return original;
    return v ?? '';
  }

  #dollar(): string {
    const start = this.#i;
    this.#next();
    if (this.#peek() !== '{') {
      const name = this.#name();
      if (name === '') return '$';
      return this.#lookup(name, this.src.slice(start, this.#i));
    }
    this.#next();
    const first = this.#peek();
    if (first === undefined) throw new InvalidArgumentError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new InvalidArgumentError('syntax error: bad substitution');
    const name = this.#name();
    const c = this.#next();
    if (c === '}') return this.#lookup(name, this.src.slice(start, this.#i));
    let colon = false;
    let modifier = c;
    if (c === ':') {
      colon = true;
      modifier = this.#next();
    }
    if (modifier !== '-' && modifier !== '+' && modifier !== '?') {
      if (modifier === undefined) throw new InvalidArgumentError("syntax error: missing '}'");
      throw new InvalidArgumentError(`unsupported modifier (${modifier}) in substitution`);
    }
    let word: string;
    try {
      word = this.#until('}').word;
    } catch (err) {
      if (this.#peek() === undefined) throw new InvalidArgumentError("syntax error: missing '}'");
      throw err;
    }
    const value = this.env(name);
    if (value === undefined && this.skipUnset) return this.src.slice(start, this.#i);
    const set = colon ? value !== undefined && value !== '' : value !== undefined;
    if (modifier === '-') return set ? (value as string) : word;
    if (modifier === '+') return set ? word : '';
    if (!set) throw new InvalidArgumentError(`${name}: ${word || 'is not allowed to be unset'}`);
    return value as string;
  }

  #name(): string {
    let name = '';
    for (let c = this.#peek(); c !== undefined; c = this.#peek()) {
      if (name === '' && /[0-9]/.test(c)) {
        while (this.#peek() !== undefined && /[0-9]/.test(this.#peek() as string)) name += this.#next();
        return name;
      }
      if (name === '' && special.has(c)) return this.#next() as string;
      if (!isNameChar(c)) break;
      name += this.#next();
    }
    return name;
  }
}
