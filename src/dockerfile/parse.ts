import { InvalidArgumentError } from '../errdefs/index.js';
import { ShellLex } from './lex.js';

/** A here-document attached to RUN, COPY or ADD (`<<EOF` … `EOF`). */
export interface Heredoc {
  name: string;
  content: string;
  /** Unquoted name: `$V` in the content is substituted (for COPY; RUN leaves that to the shell). */
  expand: boolean;
  /** `<<-`: leading tabs are stripped. */
  chomp: boolean;
}

/** One instruction as written: keyword, leading `--flags`, the rest, and where it is. */
export interface Instruction {
  /** Upper case (`RUN`). */
  keyword: string;
  /** Leading `--name=value` words, as written. */
  flags: string[];
  /** The arguments after the flags, continuation lines joined. */
  args: string;
  /** The exec form's array, when the arguments are a JSON array of strings. */
  json?: string[];
  heredocs: Heredoc[];
  /** 1-based lines of the Dockerfile it spans. */
  line: number;
  endLine: number;
  /** The instruction as one line (what history's `created_by` and errors show). */
  original: string;
}

export interface Dockerfile {
  escape: string;
  /** The `syntax` directive, noted and ignored (berth has one frontend). */
  syntax?: string;
  instructions: Instruction[];
}

/** A Dockerfile error with the line it is on. */
export class DockerfileError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`Dockerfile:${line}: ${message}`);
  }
}

const heredocKeywords = new Set(['RUN', 'COPY', 'ADD']);
const directiveLine = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/**
 * Parses a Dockerfile as BuildKit's parser does: parser directives at the top (`escape`, `syntax`),
 * comments, continuation lines (the escape character at a line's end; comment and blank lines
 * inside are skipped), here-documents for RUN, COPY and ADD, and the JSON (exec) form.
 * @throws DockerfileError
 */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  let esc = '\\';
  let syntax: string | undefined;
  let i = 0;
  // Directives: only before anything else, each once.
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = directiveLine.exec((lines[i] as string).trim());
    if (!m) break;
    const name = (m[1] as string).toLowerCase();
    const value = m[2] as string;
    if (seen.has(name)) throw new DockerfileError(`only one ${name} parser directive can be used`, i + 1);
    seen.add(name);
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') throw new DockerfileError(`invalid escape token '${value}' does not match \` or \\`, i + 1);
      esc = value;
    } else if (name === 'syntax') syntax = value;
  }
  const e = esc === '\\' ? '\\\\' : '`';
  const continuation = new RegExp(`(^|[^${e}])${e}[ \\t]*$`);
  const isComment = (l: string) => /^\s*#/.test(l);
  const instructions: Instruction[] = [];
  for (; i < lines.length; i++) {
    const raw = (lines[i] as string).trimStart();
    if (raw === '' || isComment(raw)) continue;
    const start = i + 1;
    let line = raw;
    let more = continuation.test(line);
    if (more) line = line.replace(continuation, '$1');
    while (more && i + 1 < lines.length) {
      const next = lines[++i] as string;
      if (isComment(next) || next.trim() === '') continue;
      more = continuation.test(next);
      line += more ? next.replace(continuation, '$1') : next;
    }
    const ins = instruction(line, start, i + 1);
    if (heredocKeywords.has(ins.keyword) && ins.json === undefined && line.includes('<<')) {
      for (const doc of heredocsOf(ins.args, esc)) {
        let content = '';
        let closed = false;
        while (i + 1 < lines.length) {
          const l = lines[++i] as string;
          if ((doc.chomp ? l.replace(/^\t+/, '') : l) === doc.name) {
            closed = true;
            break;
          }
          content += `${l}\n`;
        }
        if (!closed) throw new DockerfileError('unterminated heredoc', start);
        ins.heredocs.push({ ...doc, content: doc.chomp ? content.replace(/^\t+/gm, '') : content });
      }
      ins.endLine = i + 1;
    }
    instructions.push(ins);
  }
  if (instructions.length === 0) throw new DockerfileError('file with no instructions', Math.max(1, lines.length));
  return { escape: esc, ...(syntax ? { syntax } : {}), instructions };
}

/** One logical line: keyword, flags, arguments, and the JSON form when it is one. */
export function instruction(line: string, start: number, end: number): Instruction {
  const trimmed = line.trim();
  const sp = trimmed.search(/\s/);
  const keyword = (sp < 0 ? trimmed : trimmed.slice(0, sp)).toUpperCase();
  let rest = sp < 0 ? '' : trimmed.slice(sp).trimStart();
  const flags: string[] = [];
  // Leading --flags (a word each); `--` alone ends them.
  for (;;) {
    const m = /^--(\S*)(\s+|$)/.exec(rest);
    if (!m || keyword === 'ONBUILD') break;
    rest = rest.slice(m[0].length);
    if (m[1] === '') break;
    flags.push(`--${m[1]}`);
  }
  const ins: Instruction = { keyword, flags, args: rest, heredocs: [], line: start, endLine: end, original: trimmed };
  if (rest.startsWith('[') && keyword !== 'ONBUILD') {
    let v: unknown;
    try {
      v = JSON.parse(rest);
    } catch {
      v = undefined; // not JSON: the shell form
    }
    if (Array.isArray(v)) {
      if (!v.every((s) => typeof s === 'string')) {
        throw new DockerfileError('when using JSON array syntax, arrays must be comprised of strings only', start);
      }
      ins.json = v as string[];
    }
  }
  return ins;
}

/** The here-documents a line opens (`<<EOF`, `<<-EOF`, `<<"EOF"`), in order. */
function heredocsOf(args: string, esc: string): Omit<Heredoc, 'content'>[] {
  const none = () => undefined;
  let words: string[];
  try {
    words = new ShellLex({ escape: esc, rawQuotes: true, skipUnset: true }).words(args, none);
  } catch {
    return [];
  }
  const out: Omit<Heredoc, 'content'>[] = [];
  for (const w of words) {
    const m = /^(\d*)<<(-?)([^<]*)$/.exec(w);
    if (!m || m[3] === '') continue;
    const rest = m[3] as string;
    const plain = new ShellLex({ skipUnset: true }).words(rest, none);
    if (plain.length !== 1) continue;
    const name = plain[0] as string;
    const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
    out.push({ name, chomp: m[2] === '-', expand: quotes(name) === quotes(rest) });
  }
  return out;
}

/**
 * Words of ENV, LABEL and ARG as the parser splits them: white space outside quotes separates,
 * quotes and escapes stay (the lexer removes them with the substitution).
 */
export function splitWords(rest: string, esc: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote = '';
  let blankOk = false;
  let inWord = false;
  const chars = [...rest];
  for (let p = 0; p < chars.length; p++) {
    let c = chars[p] as string;
    if (!quote) {
      if (/\s/.test(c)) {
        if (inWord && (blankOk || word.length > 0)) words.push(word);
        word = '';
        blankOk = false;
        inWord = false;
        continue;
      }
      inWord = true;
      if (c === "'" || c === '"') {
        quote = c;
        blankOk = true;
      } else if (c === esc) {
        if (p + 1 === chars.length) continue;
        word += c;
        c = chars[++p] as string;
      }
      word += c;
      continue;
    }
    if (c === quote) quote = '';
    else if (c === esc && quote !== "'") {
      if (p + 1 === chars.length) continue;
      word += c;
      c = chars[++p] as string;
    }
    word += c;
  }
  if (inWord && (blankOk || word.length > 0)) words.push(word);
  return words;
}

/**
 * `K=V K2="v 2"` pairs (or the legacy `K V`) of ENV and LABEL, unexpanded.
 * @throws InvalidArgumentError
 */
export function nameValues(rest: string, keyword: string, esc: string): [string, string][] {
  const words = splitWords(rest, esc);
  if (words.length === 0) throw new InvalidArgumentError(`${keyword} requires at least one argument`);
  if (!(words[0] as string).includes('=')) {
    const m = /^(\S+)\s+([\s\S]+)$/.exec(rest.trim());
    if (!m) throw new InvalidArgumentError(`${keyword} must have two arguments`);
    return [[m[1] as string, m[2] as string]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw new InvalidArgumentError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}
