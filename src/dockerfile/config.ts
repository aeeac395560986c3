import { InvalidArgumentError } from '../errdefs/index.js';
import type { ContainerConfig, HealthConfig } from '../oci/index.js';
import { parseDuration } from '../runtime/index.js';
import { parseFlags } from './flags.js';
import type { Lookup, ShellLex } from './lex.js';
import { type Instruction, nameValues } from './parse.js';

/** The instructions that change only the image config (no layer, no container). */
export const configKeywords = new Set([
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'LABEL',
  'WORKDIR',
  'USER',
  'EXPOSE',
  'VOLUME',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
  'ONBUILD',
  'MAINTAINER',
]);

export const defaultShell = ['/bin/sh', '-c'];

/** What a config instruction works on: the config, and whether this stage has set CMD itself. */
export interface ConfigState {
  config: ContainerConfig;
  /** Set by CMD in this stage: then ENTRYPOINT keeps it; an inherited one is reset (docker's rule). */
  cmdSet: boolean;
  author?: string;
}

/** The variables a value may use: the config's ENV first, then the build args in scope. */
export function envLookup(env: readonly string[] | undefined, args: ReadonlyMap<string, string> = new Map()): Lookup {
  return (name) => {
    for (let i = (env?.length ?? 0) - 1; i >= 0; i--) {
      const kv = (env as string[])[i] as string;
      const eq = kv.indexOf('=');
      if ((eq < 0 ? kv : kv.slice(0, eq)) === name) return eq < 0 ? '' : kv.slice(eq + 1);
    }
    return args.get(name);
  };
}

/** The shell form's argv under the stage's SHELL, or the exec form as written. */
export function commandArgs(ins: Instruction, shell: readonly string[] | undefined): string[] {
  return ins.json ?? [...(shell ?? defaultShell), ins.args];
}

/**
 * Applies one config instruction to `state`, as docker's builder does: substitution where the
 * Dockerfile reference allows it (not in CMD, ENTRYPOINT, SHELL, HEALTHCHECK), WORKDIR relative to
 * the last one, EXPOSE ranges, ENTRYPOINT resetting an inherited CMD.
 * @throws InvalidArgumentError
 */
export function applyConfig(state: ConfigState, ins: Instruction, lex: ShellLex, args: ReadonlyMap<string, string> = new Map()): void {
  const c = state.config;
  const lookup = () => envLookup(c.Env, args);
  const word = (s: string) => lex.word(s, lookup());
  switch (ins.keyword) {
    case 'CMD':
      c.Cmd = commandArgs(ins, c.Shell);
      state.cmdSet = true;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = commandArgs(ins, c.Shell);
      if (!state.cmdSet) c.Cmd = undefined;
      break;
    case 'ENV': {
      const env = [...(c.Env ?? [])];
      // Every value sees the variables as they were before this instruction (docker's rule).
      const before = lookup();
      for (const [k, v] of nameValues(ins.args, 'ENV', lex.escape)) {
        if (k === '') throw new InvalidArgumentError('ENV names can not be blank');
        const value = lex.word(v, before);
        const i = env.findIndex((e) => e.split('=', 1)[0] === k);
        if (i >= 0) env[i] = `${k}=${value}`;
        else env.push(`${k}=${value}`);
      }
      c.Env = env;
      break;
    }
    case 'LABEL': {
      const labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of nameValues(ins.args, 'LABEL', lex.escape)) {
        const key = word(k);
        if (key === '') throw new InvalidArgumentError('LABEL names can not be blank');
        labels[key] = word(v);
      }
      c.Labels = labels;
      break;
    }
    case 'WORKDIR': {
      const dir = word(ins.args.trim());
      if (dir === '') throw new InvalidArgumentError('WORKDIR requires exactly one argument');
      c.WorkingDir = dir.startsWith('/') ? normalize(dir) : normalize(`${c.WorkingDir || '/'}/${dir}`);
      break;
    }
    case 'USER': {
      const user = word(ins.args.trim());
      if (user === '') throw new InvalidArgumentError('USER requires exactly one argument');
      c.User = user;
      break;
    }
    case 'EXPOSE': {
      const ports = { ...(c.ExposedPorts ?? {}) };
      for (const p of lex.words(ins.args, lookup())) for (const port of exposedPorts(p)) ports[port] = {};
      c.ExposedPorts = ports;
      break;
    }
    case 'VOLUME': {
      const vols = { ...(c.Volumes ?? {}) };
      const list = ins.json ?? ins.args.trim().split(/\s+/).filter(Boolean);
      if (list.length === 0) throw new InvalidArgumentError('VOLUME requires at least one argument');
      for (const v of list) {
        const path = word(v).trim();
        if (path === '') throw new InvalidArgumentError('VOLUME specified can not be an empty string');
        vols[path] = {};
      }
      c.Volumes = vols;
      break;
    }
    case 'STOPSIGNAL': {
      const sig = word(ins.args.trim());
      if (!/^(SIG)?[A-Z0-9+-]+$|^\d+$/.test(sig)) throw new InvalidArgumentError(`invalid signal: ${sig}`);
      c.StopSignal = sig;
      break;
    }
    case 'HEALTHCHECK':
      c.Healthcheck = healthcheck(ins);
      break;
    case 'SHELL':
      if (!ins.json || ins.json.length === 0) throw new InvalidArgumentError('SHELL requires the arguments to be in JSON form');
      c.Shell = ins.json;
      break;
    case 'ONBUILD': {
      const trigger = ins.args.trim();
      const kw = trigger.split(/\s/, 1)[0]?.toUpperCase() ?? '';
      if (kw === '') throw new InvalidArgumentError('ONBUILD requires at least one argument');
      if (kw === 'ONBUILD') throw new InvalidArgumentError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (kw === 'FROM' || kw === 'MAINTAINER') throw new InvalidArgumentError(`${kw} isn't allowed as an ONBUILD trigger`);
      c.OnBuild = [...(c.OnBuild ?? []), trigger];
      break;
    }
    case 'MAINTAINER':
      state.author = ins.args.trim();
      break;
    default:
      throw new InvalidArgumentError(`${ins.keyword} does not change the image config`);
  }
}

/** `80`, `80/udp`, `8000-8002/tcp` as exposed-port keys. */
function exposedPorts(spec: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw new InvalidArgumentError(`invalid containerPort: ${spec}`);
  const from = Number(m[1]);
  const to = m[2] !== undefined ? Number(m[2]) : from;
  if (to < from || to > 65535) throw new InvalidArgumentError(`invalid port range: ${spec}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  return Array.from({ length: to - from + 1 }, (_, i) => `${from + i}/${proto}`);
}

function healthcheck(ins: Instruction): HealthConfig {
  const flags = parseFlags(ins, {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  const sp = ins.args.search(/\s|$/);
  const kind = ins.args.slice(0, sp).toUpperCase();
  if (kind === 'NONE') {
    if (ins.args.slice(sp).trim() !== '' || ins.flags.length > 0) throw new InvalidArgumentError('HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  if (kind !== 'CMD') throw new InvalidArgumentError(`Unknown type "${kind}" in HEALTHCHECK (try CMD)`);
  const rest = ins.args.slice(sp).trim();
  if (rest === '') throw new InvalidArgumentError('Missing command after HEALTHCHECK CMD');
  let test: string[];
  let json: unknown;
  try {
    json = rest.startsWith('[') ? JSON.parse(rest) : undefined;
  } catch {
    json = undefined;
  }
  if (Array.isArray(json) && json.every((s) => typeof s === 'string')) test = ['CMD', ...(json as string[])];
  else test = ['CMD-SHELL', rest];
  const h: HealthConfig = { Test: test };
  const dur = (name: string, key: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval') => {
    const v = flags.get(name)?.[0];
    if (v === undefined) return;
    const ms = parseDuration(v);
    if (ms === undefined) throw new InvalidArgumentError(`HEALTHCHECK --${name}: invalid duration "${v}"`);
    if (ms !== 0 && ms < 1) throw new InvalidArgumentError(`HEALTHCHECK --${name} cannot be less than 1ms`);
    h[key] = Math.round(ms * 1e6);
  };
  dur('interval', 'Interval');
  dur('timeout', 'Timeout');
  dur('start-period', 'StartPeriod');
  dur('start-interval', 'StartInterval');
  const retries = flags.get('retries')?.[0];
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) throw new InvalidArgumentError(`HEALTHCHECK --retries: invalid number "${retries}"`);
    h.Retries = Number(retries);
  }
  return h;
}

/** A clean absolute path: no `.`, `..` resolved, no trailing slash. */
export function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
