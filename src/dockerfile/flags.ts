import { InvalidArgumentError } from '../errdefs/index.js';
import type { Instruction } from './parse.js';

export type FlagKind = 'string' | 'bool' | 'list';

/** An instruction's `--flags` by name; each must be one `allowed` names. @throws InvalidArgumentError */
export function parseFlags(ins: Instruction, allowed: Record<string, FlagKind>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of ins.flags) {
    const eq = f.indexOf('=');
    const name = eq < 0 ? f.slice(2) : f.slice(2, eq);
    const kind = allowed[name];
    if (!kind) throw new InvalidArgumentError(`unknown flag: --${name}`);
    let value = eq < 0 ? undefined : f.slice(eq + 1);
    if (kind === 'bool') value = value === undefined || value === '' ? 'true' : value;
    if (value === undefined) throw new InvalidArgumentError(`missing a value on flag: --${name}`);
    if (kind === 'bool' && value !== 'true' && value !== 'false') {
      throw new InvalidArgumentError(`expecting boolean value for flag ${name}, not: ${value}`);
    }
    if (kind !== 'list' && out.has(name)) throw new InvalidArgumentError(`duplicate flag specified: --${name}`);
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

/** `a=1,b="x,y",c` as BuildKit reads `--mount` and `--secret`: CSV fields, `key=value` or a bare key. */
export function csvFields(spec: string): [string, string][] {
  const out: [string, string][] = [];
  let field = '';
  let quoted = false;
  const push = () => {
    const eq = field.indexOf('=');
    out.push(eq < 0 ? [field.trim(), ''] : [field.slice(0, eq).trim(), field.slice(eq + 1)]);
    field = '';
  };
  for (const c of spec) {
    if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) push();
    else field += c;
  }
  if (field !== '' || out.length > 0) push();
  return out.filter(([k]) => k !== '');
}
