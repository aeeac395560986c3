import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, createReadStream, createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isTarArchive } from '../archive/index.js';
import { commandArgs, csvFields, defaultShell, envLookup, type Instruction, normalize, parseFlags, ShellLex } from '../dockerfile/index.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import { networkingAvailable } from '../network/index.js';
import { resolveInRoot, resolveUser, type SpecMount } from '../runtime/index.js';
import { type CopyOpts, copySources } from './copy.js';
import { runStep, secretFile } from './run-step.js';
import { type Source, SourceTree } from './sources.js';
import type { StageState, StepEnv } from './state.js';
import { extractArchive } from './workdirs.js';

/** The variables a stage's values may use: its ENV, then its ARGs. */
export function stageLookup(st: StageState) {
  return envLookup(st.config.config?.Env, st.args);
}

/** RUN: the command in a container on the stage's rootfs; its changes are the layer. */
export async function runInstruction(env: StepEnv, st: StageState, ins: Instruction, step: number): Promise<void> {
  const flags = parseFlags(ins, { mount: 'list', network: 'string', security: 'string' });
  const security = flags.get('security')?.[0];
  if (security && security !== 'sandbox') throw new InvalidArgumentError(`RUN --security=${security} is not allowed`);
  const c = st.config.config ?? {};
  const argv = runArgs(ins, c.Shell);
  const mode = flags.get('network')?.[0] ?? 'default';
  if (!['default', 'none', 'host'].includes(mode)) throw new InvalidArgumentError(`RUN --network=${mode}: want default, none or host`);
  const network = networkMode(mode === 'default' ? (env.opts.network ?? 'default') : mode);
  // Build args reach the process's environment (not the image's), ENV winning.
  const stageEnv = c.Env ?? [];
  const argEnv = [...st.args].filter(([k]) => !stageEnv.some((e) => e.split('=', 1)[0] === k)).map(([k, v]) => `${k}=${v}`);
  const argText = argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : '';
  const createdBy = `RUN ${argText}${argv.join(' ')}`;
  const mounts = (flags.get('mount') ?? []).map((m) => parseMount(m, st, env));
  const mountKeys = [];
  for (const m of mounts) mountKeys.push(await m.key());
  const key = env.stepKey(st, ins, JSON.stringify([network === 'host', mountKeys]));
  await env.fsStep(st, step, key, createdBy, async (rootfs, bundle) => {
    const specMounts: SpecMount[] = [];
    const views: (() => Promise<void>)[] = [];
    try {
      for (const m of mounts) specMounts.push(await m.mount(rootfs, bundle, views));
      const code = await runStep(env.host.runc, env.host.network, {
        id: `build-${randomBytes(8).toString('hex')}`,
        rootfs,
        bundle: join(bundle, 'run'),
        args: argv,
        env: [...stageEnv, ...argEnv],
        cwd: c.WorkingDir || '/',
        user: c.User ?? '',
        network,
        mounts: specMounts,
        signal: env.signal,
        onOutput: (data) => env.emit({ type: 'output', step, data }),
      });
      if (code !== 0) {
        // One line: the output itself went out as the step ran.
        const command = argv.join(' ').replace(/\n/g, '\\n');
        throw new FailedPreconditionError(
          `process "${command.length > 200 ? `${command.slice(0, 200)}…` : command}" did not complete successfully: exit code: ${code}`,
        );
      }
    } finally {
      for (const release of views.reverse()) await release();
    }
  });
}

/** The network mode of RUN steps: `default` is the bridge where berth can make networks, else none. */
function networkMode(mode: string): 'none' | 'host' | 'bridge' {
  if (mode === 'host' || mode === 'none') return mode;
  if (mode === 'default' || mode === 'bridge') return networkingAvailable() ? 'bridge' : 'none';
  throw new InvalidArgumentError(`network mode "${mode}" is not supported for builds (want bridge, host or none)`);
}

/** RUN's argv: the exec form, the shell form, or a here-document as the script (BuildKit's rules). */
function runArgs(ins: Instruction, shell: string[] | undefined): string[] {
  if (ins.json || ins.heredocs.length === 0) return commandArgs(ins, shell);
  const only = ins.heredocs.length === 1 && /^\d*<<-?\S+$/.test(ins.args.trim());
  if (only) {
    const doc = ins.heredocs[0] as Instruction['heredocs'][number];
    // A script with its own interpreter line is fed to that interpreter.
    const shebang = /^#!\s*(.+)\n/.exec(doc.content);
    if (shebang) return [...(shell ?? defaultShell), `${(shebang[1] as string).trim()} <<'${doc.name}'\n${doc.content}${doc.name}`];
    return [...(shell ?? defaultShell), doc.content];
  }
  // A command reading here-documents: the shell gets them as written.
  const script = [ins.args, ...ins.heredocs.map((d) => `${d.content}${d.name}`)].join('\n');
  return [...(shell ?? defaultShell), script];
}

interface StepMount {
  /** What the cache key takes of it (for a bind mount, what it shows: the sources' digest, the stage's key). */
  key(): Promise<string>;
  mount(rootfs: string, bundle: string, release: (() => Promise<void>)[]): Promise<SpecMount>;
}

/** `RUN --mount=type=bind|cache|tmpfs|secret,…` (BuildKit's fields). @throws InvalidArgumentError */
function parseMount(spec: string, st: StageState, env: StepEnv): StepMount {
  const f = new Map(csvFields(spec));
  const type = f.get('type') ?? 'bind';
  const target = f.get('target') ?? f.get('dst') ?? f.get('destination');
  const flag = (...names: string[]) => names.some((n) => f.has(n) && f.get(n) !== 'false');
  // A bind mount is read-only unless `rw`; the others are writable unless `ro` (BuildKit's defaults).
  const readOnly = type === 'bind' ? !flag('rw', 'readwrite') : flag('ro', 'readonly');
  const octal = (v: string | undefined, dflt: number) => (v === undefined ? dflt : Number.parseInt(v, 8));
  const abs = (t: string) => (t.startsWith('/') ? normalize(t) : normalize(`${st.config.config?.WorkingDir || '/'}/${t}`));
  switch (type) {
    case 'bind': {
      if (!target) throw new InvalidArgumentError(`--mount ${spec}: a bind mount needs a target`);
      const from = f.get('from');
      const source = f.get('source') ?? f.get('src') ?? '/';
      return {
        key: async () => {
          const shown =
            from === undefined ? await env.withTree(st, undefined, (tree) => tree.digest(tree.match(source))) : await env.treeKey(st, from);
          return `bind:${from ?? ''}:${source}:${abs(target)}:${readOnly}:${shown}`;
        },
        async mount(_rootfs, bundle, release) {
          // A view of the stage or image (or the context itself), held while the step runs.
          let done!: () => void;
          const held = new Promise<void>((r) => {
            done = r;
          });
          let host = '';
          let finished: Promise<void> = Promise.resolve();
          await new Promise<void>((ready, fail) => {
            finished = env.withTree(st, from, async (tree) => {
              host = resolveInRoot(tree.root, source);
              ready();
              await held;
            });
            finished.catch(fail);
          });
          release.push(async () => {
            done();
            await finished;
          });
          if (!readOnly) {
            // rw: the step writes to a copy, thrown away after (as BuildKit's are); never to the source.
            const copy = join(bundle, `bind-${randomBytes(4).toString('hex')}`);
            cpSync(host, copy, { recursive: true, verbatimSymlinks: true });
            host = copy;
          }
          return { destination: abs(target), type: 'bind', source: host, options: ['rbind', readOnly ? 'ro' : 'rw'] };
        },
      };
    }
    case 'cache': {
      if (!target) throw new InvalidArgumentError(`--mount ${spec}: a cache mount needs a target`);
      const id = f.get('id') ?? abs(target);
      const uid = Number(f.get('uid') ?? 0);
      const gid = Number(f.get('gid') ?? 0);
      const mode = octal(f.get('mode'), 0o755);
      return {
        key: async () => `cache:${abs(target)}:${readOnly}`,
        async mount() {
          const dir = join(env.host.cacheMountDir, createHash('sha256').update(id).digest('hex').slice(0, 32));
          mkdirSync(dir, { recursive: true, mode });
          chownSync(dir, uid, gid);
          chmodSync(dir, mode);
          return { destination: abs(target), type: 'bind', source: dir, options: ['rbind', readOnly ? 'ro' : 'rw'] };
        },
      };
    }
    case 'tmpfs': {
      if (!target) throw new InvalidArgumentError(`--mount ${spec}: a tmpfs mount needs a target`);
      const size = f.get('size');
      return {
        key: async () => `tmpfs:${abs(target)}`,
        async mount() {
          return {
            destination: abs(target),
            type: 'tmpfs',
            source: 'tmpfs',
            options: ['nosuid', 'nodev', ...(size ? [`size=${size}`] : [])],
          };
        },
      };
    }
    case 'secret': {
      const id = f.get('id') ?? (target ? (target.split('/').pop() as string) : undefined);
      if (!id) throw new InvalidArgumentError(`--mount ${spec}: a secret mount needs an id or a target`);
      const dest = abs(target ?? `/run/secrets/${id}`);
      const required = f.get('required') === 'true' || f.get('required') === '';
      return {
        // Not the secret's content: a changed secret does not make a new layer (BuildKit's rule too).
        key: async () => `secret:${id}:${dest}`,
        async mount(_rootfs, bundle) {
          const src = env.opts.secrets?.[id];
          if (!src) {
            if (required) throw new InvalidArgumentError(`secret ${id}: not provided (--secret id=${id},src=FILE)`);
            return { destination: dest, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=4k'] };
          }
          const file = secretFile(bundle, id, src, octal(f.get('mode'), 0o400), Number(f.get('uid') ?? 0), Number(f.get('gid') ?? 0));
          return { destination: dest, type: 'bind', source: file, options: ['rbind', 'ro'] };
        },
      };
    }
    default:
      throw new InvalidArgumentError(`--mount type=${type} is not supported (want bind, cache, tmpfs or secret)`);
  }
}

/** COPY and ADD: files from the context, a stage, an image, a here-document or (ADD) a URL. */
export async function copyInstruction(env: StepEnv, st: StageState, ins: Instruction, step: number): Promise<void> {
  const add = ins.keyword === 'ADD';
  const flags = parseFlags(
    ins,
    add
      ? { chown: 'string', chmod: 'string', checksum: 'string', link: 'bool', 'keep-git-dir': 'bool' }
      : { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' },
  );
  const lookup = stageLookup(st);
  const word = (s: string) => env.lex.word(s, lookup);
  const list = ins.json ?? ins.args.trim().split(/\s+/).filter(Boolean);
  if (list.length < 2)
    throw new InvalidArgumentError(
      `${ins.keyword} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  const rawDest = word(list.at(-1) as string);
  const dest = rawDest.startsWith('/') ? rawDest : `${st.config.config?.WorkingDir || '/'}/${rawDest}`.replace(/^\/\//, '/');
  const destDir = /\/\.?$/.test(rawDest) ? dest.replace(/\/?\.?$/, '/') : dest;
  const srcWords = list.slice(0, -1);
  const from = flags.get('from')?.[0] !== undefined ? word(flags.get('from')?.[0] as string) : undefined;
  const chown = flags.get('chown')?.[0] !== undefined ? word(flags.get('chown')?.[0] as string) : undefined;
  const chmodText = flags.get('chmod')?.[0];
  if (chmodText !== undefined && !/^[0-7]{3,4}$/.test(chmodText))
    throw new InvalidArgumentError(`invalid --chmod=${chmodText}: want an octal mode`);
  const checksum = flags.get('checksum')?.[0];
  const heredocNames = new Map(ins.heredocs.map((d) => [d.name, d]));
  const docs = srcWords.flatMap((w) => {
    const m = /^\d*<<-?(.+)$/.exec(w);
    const name = m ? (m[1] as string).replace(/^["']|["']$/g, '') : undefined;
    const d = name !== undefined ? heredocNames.get(name) : undefined;
    return d ? [d] : [];
  });
  const patterns = srcWords.filter((w) => !/^\d*<<-?/.test(w)).map(word);
  const urls = add ? patterns.filter((p) => /^https?:\/\//.test(p)) : [];
  const local = patterns.filter((p) => !urls.includes(p));
  if (urls.length > 0 && from !== undefined) throw new InvalidArgumentError('ADD of a URL takes no --from');

  // Sources that are not a tree already: here-documents and downloads, as files in a tree of their own.
  const extra = join(env.workDir, `src-${randomBytes(6).toString('hex')}`);
  mkdirSync(extra, { recursive: true });
  const extraNames: string[] = [];
  for (const d of docs) {
    const content = d.expand ? new ShellLex({ escape: env.lex.escape, heredoc: true }).word(d.content, lookup) : d.content;
    writeFileSync(join(extra, d.name), content, { mode: 0o644 });
    extraNames.push(d.name);
  }
  for (const url of urls) extraNames.push(await download(url, extra, checksum, env.signal));
  const extraTree = new SourceTree(extra);
  const extraSources = extraNames.flatMap((n) => extraTree.match(n));

  await env.withTree(st, from, async (tree, treeKey) => {
    const sources: Source[] = local.flatMap((p) => tree.match(p));
    // Several sources (written, or matched by a wildcard) need a directory destination.
    const many = docs.length + urls.length + sources.length > 1;
    const digest = `${treeKey}:${from === undefined ? await tree.digest(sources) : local.join('\0')}:${await extraTree.digest(extraSources)}`;
    const createdBy = `${ins.keyword} ${ins.original.replace(/^\S+\s+/, '')}`;
    const key = env.stepKey(st, ins, `${digest}:${chown ?? ''}:${chmodText ?? ''}`);
    await env.fsStep(st, step, key, createdBy, async (rootfs) => {
      const opts: CopyOpts = { keepOwner: from !== undefined };
      if (chown !== undefined) {
        const u = resolveUser(rootfs, chown);
        opts.owner = { uid: u.uid, gid: u.gid };
      }
      if (chmodText !== undefined) opts.mode = Number.parseInt(chmodText, 8);
      if (extraSources.length) copySources(extraTree, extraSources, rootfs, destDir, { ...opts, keepOwner: false }, many);
      if (!add) {
        if (sources.length) copySources(tree, sources, rootfs, destDir, opts, many);
        return;
      }
      // ADD: a local tar archive (plain, gzip, bzip2, xz or zstd) is extracted into the destination.
      const plain: Source[] = [];
      for (const s of sources) {
        if (s.st.isFile() && (await isTarArchive(s.host))) {
          await extractArchive(createReadStream(s.host), resolveInRoot(rootfs, destDir, { mkdir: true }), { signal: env.signal });
        } else plain.push(s);
      }
      if (plain.length) copySources(tree, plain, rootfs, destDir, opts, many);
    });
  });
}

/** ADD's download: the file named after the URL's last path segment, mode 0600, checked against `--checksum`. */
async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<string> {
  const last = decodeURIComponent(new URL(url).pathname.split('/').pop() || '').replace(/\//g, '_');
  const name = last === '' || last === '.' || last === '..' ? '__unnamed__' : last;
  const res = await fetch(url, { ...(signal ? { signal } : {}), redirect: 'follow' });
  if (!res.ok || !res.body) throw new FailedPreconditionError(`ADD ${url}: ${res.status} ${res.statusText}`);
  const file = join(dir, name);
  const h = createHash('sha256');
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => h.update(c));
  await pipeline(body, createWriteStream(file, { mode: 0o600 }));
  if (checksum !== undefined) {
    const got = `sha256:${h.digest('hex')}`;
    if (got !== checksum) throw new InvalidArgumentError(`ADD ${url}: digest mismatch ${got}: want ${checksum}`);
  }
  return name;
}

/** WORKDIR: the directory is made (root's, 0755) when missing, as a layer of its own. */
export async function workdirInstruction(env: StepEnv, st: StageState, ins: Instruction, step: number, dir: string): Promise<void> {
  await env.fsStep(st, step, env.stepKey(st, ins, dir), `WORKDIR ${dir}`, async (rootfs) => {
    resolveInRoot(rootfs, dir, { mkdir: true });
  });
}
