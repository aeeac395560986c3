import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { applyConfig, configKeywords, type Instruction, instruction, parseDockerfile, ShellLex } from '../dockerfile/index.js';
import { hasCode, InvalidArgumentError, withContext } from '../errdefs/index.js';
import {
  configInGoOrder,
  goTime,
  type ResolvedImage,
  scratchConfig,
  snapshotResource,
  unpackedTop,
  usesDockerTypes,
  writeImage,
  writeLayer,
} from '../images/index.js';
import { chainIDs, type Digest, type ImageConfig, type Platform, parsePlatform } from '../oci/index.js';
import { defaultPath } from '../runtime/index.js';
import { mountAll, unmount } from '../snapshots/index.js';
import { BuildCache, type CachedStep } from './cache.js';
import { SourceTree } from './sources.js';
import { declareArgs, neededStages, planStages, platformArgs, type Stage, type StagePlan, stageByRef, targetStage } from './stages.js';
import type { StageState, StepEnv } from './state.js';
import { copyInstruction, runInstruction, stageLookup, workdirInstruction } from './steps.js';
import type { BuildEvent, BuildHost, BuildOpts, BuildResult } from './types.js';
import { freshDir } from './workdirs.js';

/**
 * Builds a Dockerfile into an image: the stages the target needs, independent ones at once; RUN
 * steps as containers, COPY and ADD into snapshots; each step's changes a layer, cached by a key of
 * everything it depends on. Reproducible by default: layer times clamped to SOURCE_DATE_EPOCH (0),
 * the config's and history's dates the same, entries sorted, context files 0:0.
 * @throws DockerfileError (the line is in the message), or the error of the step that failed, with its line
 */
export async function build(host: BuildHost, opts: BuildOpts): Promise<BuildResult> {
  return host.ns.leases.withLease((lease) => new Build(host, opts, lease.id).run(), {
    expiresIn: 24 * 3_600_000,
    labels: { 'berth.build': opts.tags?.[0] ?? '<none>' },
  });
}

class Build implements StepEnv {
  readonly lex: ShellLex;
  readonly context: SourceTree;
  readonly clamp: number | undefined;
  workDir: string;
  readonly #plan: StagePlan;
  readonly #created: string;
  readonly #cache: BuildCache;
  readonly #globals = new Map<string, string>();
  readonly #stages = new Map<number, Promise<StageState>>();
  readonly #stepNo = new Map<Instruction, number>();
  readonly #usedArgs = new Set<string>();
  /** The build's own abort (a failed stage stops the others), joined with the caller's. */
  readonly #abort = new AbortController();
  readonly signal: AbortSignal;
  #total = 0;
  #shown = 1;
  #held: BuildEvent[] = [];

  constructor(
    readonly host: BuildHost,
    readonly opts: BuildOpts,
    readonly lease: string,
  ) {
    const df = parseDockerfile(opts.dockerfile);
    this.lex = new ShellLex({ escape: df.escape });
    this.#plan = planStages(df);
    this.context = SourceTree.context(opts.contextDir);
    const argEpoch = opts.buildArgs?.SOURCE_DATE_EPOCH;
    if (argEpoch !== undefined && !/^\d+$/.test(argEpoch)) throw new InvalidArgumentError(`invalid SOURCE_DATE_EPOCH "${argEpoch}"`);
    const epoch = opts.sourceDateEpoch === false ? undefined : argEpoch !== undefined ? Number(argEpoch) : (opts.sourceDateEpoch ?? 0);
    this.clamp = epoch;
    this.#created = goTime(epoch === undefined ? new Date() : new Date(epoch * 1000));
    this.#cache = new BuildCache(host.ns, host.sn);
    this.workDir = '';
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.#abort.signal]) : this.#abort.signal;
  }

  /**
   * Events in step order, as the classic builder prints them: a later stage running meanwhile is
   * held back until the steps before it are done.
   */
  emit(e: BuildEvent): void {
    if (e.type === 'warning') {
      this.opts.onEvent?.(e);
      return;
    }
    if (e.step !== this.#shown) {
      this.#held.push(e);
      return;
    }
    this.opts.onEvent?.(e);
    if (e.type !== 'step-done') return;
    for (this.#shown++; ; ) {
      const next = this.#held.filter((h) => h.type !== 'warning' && h.step === this.#shown);
      if (next.length === 0) return;
      this.#held = this.#held.filter((h) => !next.includes(h));
      for (const h of next) this.opts.onEvent?.(h);
      if (!next.some((h) => h.type === 'step-done')) return;
      this.#shown++;
    }
  }

  async run(): Promise<BuildResult> {
    this.workDir = await freshDir(join(this.host.runDir, 'build'), 'b');
    try {
      const platform = platformArgs(this.opts.platform);
      const buildArgs = this.opts.buildArgs ?? {};
      for (const ins of this.#plan.globalArgs) {
        for (const a of declareArgs(ins, this.lex, (n) => this.#globals.get(n) ?? platform.get(n))) {
          this.#usedArgs.add(a.name);
          const v = buildArgs[a.name] ?? a.default;
          if (v !== undefined) this.#globals.set(a.name, v);
        }
      }
      for (const [k, v] of platform) if (!this.#globals.has(k)) this.#globals.set(k, v);
      const target = targetStage(this.#plan, this.opts.target);
      const needed = neededStages(this.#plan, target, (n) => this.#globals.get(n));
      // Steps numbered as the classic builder numbers them: the global ARGs first.
      for (const ins of this.#plan.globalArgs) this.#stepNo.set(ins, ++this.#total);
      for (const s of this.#plan.stages) {
        if (!needed.has(s.index)) continue;
        for (const ins of [s.from, ...s.instructions]) this.#stepNo.set(ins, ++this.#total);
      }
      for (const ins of this.#plan.globalArgs) {
        const step = this.#stepNo.get(ins) as number;
        this.emit({ type: 'step', step, total: this.#total, stage: '', text: ins.original });
        this.emit({ type: 'step-done', step, id: '', seconds: 0 });
      }
      // Every needed stage starts now; each waits for the stages it reads when it reaches them.
      for (const i of needed) this.#stage(this.#plan.stages[i] as Stage).catch(() => {});
      const st = await this.#stage(target);
      const unused = Object.keys(buildArgs).filter((k) => !this.#usedArgs.has(k) && !predefinedArgs.has(k));
      if (unused.length) this.emit({ type: 'warning', message: `One or more build-args [${unused.join(' ')}] were not consumed` });
      return await this.#commit(st);
    } catch (err) {
      // The stages still running stop (their steps are killed) before their directories go; the
      // error is the first one (a stage killed for it fails too, but not first).
      if (!this.#abort.signal.aborted) this.#abort.abort(err);
      await Promise.allSettled(this.#stages.values());
      // What later stages said (the failing step's output among it) is shown, in step order.
      const held = this.#held.sort((a, b) => (a.type === 'warning' || b.type === 'warning' ? 0 : a.step - b.step));
      this.#held = [];
      for (const e of held) this.opts.onEvent?.(e);
      throw this.opts.signal?.aborted ? err : this.#abort.signal.reason;
    } finally {
      rmSync(this.workDir, { recursive: true, force: true });
    }
  }

  /** The stage's final state, built once however many wait for it. */
  #stage(s: Stage): Promise<StageState> {
    let p = this.#stages.get(s.index);
    if (!p) {
      p = this.#buildStage(s);
      // The first failure stops the others at once, whichever stage waits for which.
      p.catch((err) => {
        if (!this.#abort.signal.aborted) this.#abort.abort(err);
      });
      this.#stages.set(s.index, p);
    }
    return p;
  }

  async #buildStage(s: Stage): Promise<StageState> {
    const label = s.name ?? String(s.index);
    const st = await this.#at(s.from, label, async () => {
      const base = await this.#from(s);
      // A stage's image has a PATH, as docker's builders give it.
      const env = base.config.config?.Env ?? [];
      if (!env.some((e) => e.startsWith('PATH=')))
        base.config.config = { ...(base.config.config ?? {}), Env: [`PATH=${defaultPath}`, ...env] };
      // The base's ONBUILD triggers run as part of FROM, and are not passed on.
      const triggers = base.config.config?.OnBuild ?? [];
      if (base.config.config) delete base.config.config.OnBuild;
      for (const t of triggers) {
        const ins = instruction(t, s.from.line, s.from.line);
        this.#stepNo.set(ins, this.#stepNo.get(s.from) as number);
        await this.#step(base, ins);
      }
      return base;
    });
    for (const ins of s.instructions) await this.#at(ins, label, () => this.#step(st, ins));
    return st;
  }

  /** Runs one instruction, its errors naming its line; says when it is done with the ID its state has. */
  async #at(ins: Instruction, stage: string, fn: () => Promise<StageState>): Promise<StageState> {
    const step = this.#stepNo.get(ins) as number;
    this.emit({ type: 'step', step, total: this.#total, stage, text: ins.original });
    const t0 = performance.now();
    let st: StageState;
    try {
      st = await fn();
    } catch (err) {
      if (/^Dockerfile:\d+: /.test((err as Error).message)) throw err;
      throw withContext(err, `Dockerfile:${ins.line}: ${ins.original.slice(0, 80)}`);
    }
    const id = createHash('sha256')
      .update(JSON.stringify(configInGoOrder(st.config)))
      .digest('hex');
    this.emit({ type: 'step-done', step, id: `sha256:${id}`, seconds: (performance.now() - t0) / 1000 });
    return st;
  }

  async #from(s: Stage): Promise<StageState> {
    const g = (n: string) => this.#globals.get(n);
    const base = this.lex.word(s.base, g);
    const label = s.name ?? String(s.index);
    const platformText = s.platform !== undefined ? this.lex.word(s.platform, g) : undefined;
    const platform = platformText ? parsePlatform(platformText) : this.opts.platform;
    const dep = stageByRef(this.#plan, base, s.index);
    if (dep) {
      const parent = await this.#stage(dep);
      return { ...clone(parent), label, index: s.index, cmdSet: false, args: new Map() };
    }
    if (base.toLowerCase() === 'scratch') {
      const config = scratchConfig();
      if (platform)
        Object.assign(
          config,
          { os: platform.os, architecture: platform.architecture },
          platform.variant ? { variant: platform.variant } : {},
        );
      config.history = [];
      return {
        label,
        index: s.index,
        config,
        layers: [],
        top: undefined,
        docker: false,
        cmdSet: false,
        args: new Map(),
        key: hash(['scratch', platformText]),
      };
    }
    const { resolved: r, top } = await this.#baseImage(base, platform);
    const config = JSON.parse(JSON.stringify(r.config.value)) as ImageConfig;
    config.history ??= [];
    return {
      label,
      index: s.index,
      config,
      layers: [...r.manifest.value.layers],
      top,
      docker: usesDockerTypes(r),
      cmdSet: false,
      args: new Map(),
      key: hash(['image', r.manifestDesc.digest]),
    };
  }

  async #step(st: StageState, ins: Instruction): Promise<StageState> {
    const step = this.#stepNo.get(ins) as number;
    const kw = ins.keyword;
    if (kw === 'ARG') {
      const lookup = stageLookup(st);
      for (const a of declareArgs(ins, this.lex, lookup)) {
        this.#usedArgs.add(a.name);
        const v = this.opts.buildArgs?.[a.name] ?? a.default ?? this.#globals.get(a.name);
        if (v !== undefined) st.args.set(a.name, v);
      }
      st.key = this.stepKey(st, ins);
      return st;
    }
    if (kw === 'RUN') await runInstruction(this, st, ins, step);
    else if (kw === 'COPY' || kw === 'ADD') await copyInstruction(this, st, ins, step);
    else if (configKeywords.has(kw)) {
      const state = {
        config: { ...(st.config.config ?? {}) },
        cmdSet: st.cmdSet,
        ...(st.config.author ? { author: st.config.author } : {}),
      };
      applyConfig(state, ins, this.lex, st.args);
      st.config.config = state.config;
      st.cmdSet = state.cmdSet;
      if (state.author) st.config.author = state.author;
      st.key = this.stepKey(st, ins);
      if (kw === 'WORKDIR') await workdirInstruction(this, st, ins, step, state.config.WorkingDir as string);
      else st.config.history?.push({ created: this.#created, created_by: ins.original, empty_layer: true });
    } else if (kw === 'FROM') {
      throw new InvalidArgumentError('FROM is not allowed here');
    } else {
      throw new InvalidArgumentError(`unknown instruction: ${kw}`);
    }
    return st;
  }

  stepKey(st: StageState, ins: Instruction, extra?: string): string {
    return hash([st.key, ins.keyword, ins.flags, ins.args, ins.heredocs.map((d) => d.content), [...st.args].sort(), extra]);
  }

  async fsStep(
    st: StageState,
    step: number,
    key: string,
    createdBy: string,
    work: (rootfs: string, bundle: string) => Promise<void>,
  ): Promise<void> {
    const { ns, sn } = this.host;
    let result = this.opts.noCache ? undefined : await this.#cache.get(key);
    if (result) this.emit({ type: 'cached', step });
    else {
      const id = `build-${randomBytes(8).toString('hex')}`;
      const bundle = join(this.workDir, id);
      const rootfs = join(bundle, 'rootfs');
      mkdirSync(rootfs, { recursive: true });
      ns.leases.addResource(this.lease, snapshotResource(sn, id));
      const mounts = await sn.prepare(id, { ...(st.top ? { parent: st.top } : {}), labels: { 'berth.build': id } });
      try {
        await mountAll(mounts, rootfs);
        try {
          await work(rootfs, bundle);
        } finally {
          await unmount(rootfs);
        }
        const clamp = this.clamp;
        const written = await writeLayer(
          ns,
          this.lease,
          sn.diff(id, { ...(clamp !== undefined ? { clampMtime: clamp } : {}), signal: this.signal }),
          {
            docker: st.docker,
            signal: this.signal,
          },
        );
        if (written.tarSize <= 1024) {
          await sn.remove(id);
          result = { empty: true };
        } else {
          const chainID = chainIDs([...st.config.rootfs.diff_ids, written.diffID]).at(-1) as Digest;
          ns.leases.addResource(this.lease, snapshotResource(sn, chainID));
          if (sn.has(chainID, 'committed')) await sn.remove(id);
          else {
            try {
              await sn.commit(chainID, id);
            } catch (err) {
              // Another build committed the same layer stack meanwhile: theirs serves.
              if (!hasCode(err, 'ALREADY_EXISTS')) throw err;
              await sn.remove(id);
            }
          }
          result = { layer: written.layer, diffID: written.diffID, chainID };
        }
      } catch (err) {
        await sn.remove(id).catch(() => {});
        throw err;
      } finally {
        rmSync(bundle, { recursive: true, force: true });
      }
      this.#cache.put(key, result, createdBy);
    }
    st.key = key;
    apply(st, result, { created: this.#created, created_by: createdBy });
  }

  async withTree<T>(st: StageState, from: string | undefined, fn: (tree: SourceTree, key: string) => Promise<T>): Promise<T> {
    if (from === undefined) return fn(this.context, 'context');
    const { top, key } = await this.#source(st, from);
    const dir = join(this.workDir, `view-${randomBytes(6).toString('hex')}`);
    mkdirSync(dir, { recursive: true });
    if (top === undefined) {
      try {
        return await fn(new SourceTree(dir, undefined, from), key);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const viewKey = `build-view-${randomBytes(8).toString('hex')}`;
    this.host.ns.leases.addResource(this.lease, snapshotResource(this.host.sn, viewKey));
    const mounts = await this.host.sn.view(viewKey, { parent: top });
    try {
      await mountAll(mounts, dir);
      try {
        return await fn(new SourceTree(dir, undefined, from), key);
      } finally {
        await unmount(dir);
      }
    } finally {
      await this.host.sn.remove(viewKey).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async treeKey(st: StageState, from: string): Promise<string> {
    return (await this.#source(st, from)).key;
  }

  /** What `--from` names: a stage before this one (by name or index) or an image; its rootfs and cache key. */
  async #source(st: StageState, from: string): Promise<{ top: Digest | undefined; key: string }> {
    const dep = stageByRef(this.#plan, from, st.index);
    if (dep) {
      const s = await this.#stage(dep);
      return { top: s.top, key: s.key };
    }
    const { resolved, top } = await this.#baseImage(from, this.opts.platform);
    return { top, key: `image:${resolved.manifestDesc.digest}` };
  }

  /** A base image (found, or pulled as the front end pulls), unpacked, its rootfs held by the build's lease. */
  async #baseImage(ref: string, platform: Platform | undefined): Promise<{ resolved: ResolvedImage; top: Digest | undefined }> {
    const { resolved } = await this.host.image(ref, {
      pull: this.opts.pull ?? false,
      ...(platform ? { platform } : {}),
      signal: this.signal,
    });
    const top = await unpackedTop(this.host.ns, this.host.sn, resolved);
    if (top !== undefined) this.host.ns.leases.addResource(this.lease, snapshotResource(this.host.sn, top));
    return { resolved, top };
  }

  /** The image of the target stage, with `--label`s, named by the tags. */
  async #commit(st: StageState): Promise<BuildResult> {
    const config = st.config;
    config.created = this.#created;
    if (this.opts.labels && Object.keys(this.opts.labels).length) {
      config.config = { ...(config.config ?? {}), Labels: { ...(config.config?.Labels ?? {}), ...this.opts.labels } };
    }
    const tags = this.opts.tags ?? [];
    const w = await writeImage(this.host.ns, this.lease, config, st.layers, { docker: st.docker, ...(tags[0] ? { name: tags[0] } : {}) });
    for (const t of tags.slice(1)) this.host.ns.images.put({ name: t, target: w.manifest });
    return { imageId: w.imageId, manifest: w.manifest.digest, tags };
  }
}

/** Build args docker lets through without an ARG (proxy settings). */
const predefinedArgs = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((n) => [n, n.toLowerCase()]).concat(['SOURCE_DATE_EPOCH']),
);

function apply(st: StageState, r: CachedStep, history: { created: string; created_by: string }): void {
  if (!r.empty) {
    st.layers.push(r.layer);
    st.config.rootfs.diff_ids.push(r.diffID);
    st.top = r.chainID;
  }
  st.config.history?.push(r.empty ? { ...history, empty_layer: true } : history);
}

function clone(s: StageState): StageState {
  return { ...s, config: JSON.parse(JSON.stringify(s.config)) as ImageConfig, layers: [...s.layers], args: new Map(s.args) };
}

function hash(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}
