import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { diffTrees } from '../archive/index.js';
import { FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError, withContext } from '../errdefs/index.js';
import { applyChange, type CommitResult, commitImage, type ResolvedImage, resolveImage, unpackUnderLease } from '../images/index.js';
import type { ContainerRecord, ContainerState, NamespaceScope } from '../metadata/index.js';
import { chainIDs, type Descriptor, hostPlatform, type ContainerConfig as ImageRunConfig, platformMatcher } from '../oci/index.js';
import {
  type Attachment,
  attach,
  buildSpec,
  capabilitySet,
  exitStatus,
  type LinuxSeccomp,
  launchMonitor,
  type Monitor,
  mergeEnv,
  overrideEnv,
  type Process,
  processArgs,
  Runc,
  type RuntimeSpec,
  resolveInRoot,
  resolveUser,
  type SeccompSyscall,
  type SpecMount,
} from '../runtime/index.js';
import { diskUsage, isMountPoint, mountAll, type SnapshotService, unmount } from '../snapshots/index.js';
import { cliEntry, flock } from '../sys/index.js';
import type { Berth, SnapshotterName } from './berth.js';

/** docker's `Config` half of a container: the image's config with the caller's overrides applied. */
export interface ContainerRunConfig {
  Hostname: string;
  User: string;
  Env: string[];
  Cmd: string[];
  Entrypoint: string[] | null;
  WorkingDir: string;
  Labels: Record<string, string>;
  Tty: boolean;
  OpenStdin: boolean;
  StopSignal?: string;
  StopTimeout?: number;
  Image: string;
  Volumes?: Record<string, object>;
}

/** docker's `HostConfig` half: how the host runs it. */
export interface ContainerHostConfig {
  Binds: string[];
  Tmpfs: Record<string, string>;
  NetworkMode: 'none' | 'host';
  Memory: number;
  NanoCpus: number;
  PidsLimit: number;
  Ulimits: { Name: string; Soft: number; Hard: number }[];
  Init: boolean;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  CapAdd: string[];
  CapDrop: string[];
  SecurityOpt: string[];
  AutoRemove: boolean;
  GroupAdd: string[];
}

/** What a container record keeps as its config. */
export interface StoredContainerConfig {
  Config: ContainerRunConfig;
  HostConfig: ContainerHostConfig;
  /** The image manifest the container was made from (commit builds on it). */
  Manifest: Descriptor;
}

export type Container = ContainerRecord<StoredContainerConfig>;

export interface CreateContainerOpts {
  name?: string;
  cmd?: string[];
  /** Replaces the image's Entrypoint (and its Cmd, as docker does); `[]` clears it. */
  entrypoint?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  openStdin?: boolean;
  labels?: Record<string, string>;
  stopSignal?: string;
  stopTimeout?: number;
  host?: Partial<ContainerHostConfig>;
}

export interface ExecOpts {
  cmd: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  tty?: boolean;
  privileged?: boolean;
}

const adjectives =
  'brave calm eager fancy gentle happy jolly keen lucid merry nifty proud quirky sharp tender vivid witty zealous bold clever'.split(' ');
const surnames =
  'turing hopper lovelace curie noether ritchie thompson torvalds knuth dijkstra lamport liskov hamilton kay pike shannon babbage wozniak'.split(
    ' ',
  );

let currentBoot: string | undefined;
/** This boot's ID: a container recorded under another one is not running any more. */
function bootId(): string {
  currentBoot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return currentBoot;
}

/** A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined when it is gone. */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** An executable on PATH, as an absolute path. @throws FailedPreconditionError */
export function lookPath(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  throw new FailedPreconditionError(`"${name}" was not found on PATH (install the Debian package "${name}")`);
}

/**
 * The containers of one namespace: create (a writable snapshot on the image), start (conmon runs
 * `runc create`, berth runs `runc start`), the state reconciled from the monitor's files, stop,
 * kill, remove, exec and commit. Several processes may work on one root: each container's changes
 * of state are serialised by a file lock in its directory.
 */
export class Containers {
  readonly ns: NamespaceScope;
  readonly #berth: Berth;
  readonly #runDir: string;

  constructor(berth: Berth, namespace: string) {
    this.#berth = berth;
    this.ns = berth.namespace(namespace);
    this.#runDir = berth.runDir;
  }

  #runc: Runc | undefined;
  /** runc, with this root's state directory; looked up when first needed (listing needs no runc). */
  get runc(): Runc {
    this.#runc ??= new Runc(join(this.#runDir, 'runc'), process.env.BERTH_RUNC ?? lookPath('runc'));
    return this.#runc;
  }

  /** The directories and files of one container. */
  paths(id: string) {
    const dir = join(this.#berth.root, 'containers', this.ns.name, id);
    return {
      dir,
      rootfs: join(dir, 'rootfs'),
      log: join(dir, 'container.log'),
      persist: join(dir, 'state'),
      spec: join(dir, 'config.json'),
      exitDir: join(this.#runDir, 'exits'),
      socketDir: join(this.#runDir, 'socket'),
    };
  }

  #snapshots(rec: Pick<Container, 'snapshotter'>): SnapshotService {
    return this.#berth.snapshotter(this.ns.name, rec.snapshotter as SnapshotterName);
  }

  /** Runs `fn` holding the container's lock (flock on `<dir>/lock`), across processes. */
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const { dir } = this.paths(id);
    let fd: number;
    try {
      fd = openSync(join(dir, 'lock'), 'a');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`No such container: ${id}`);
      throw err;
    }
    try {
      flock(fd, 'ex');
      return await fn();
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Creates a container from an image of the namespace: unpacks the image when its snapshots are
   * missing, prepares the writable snapshot on its top layer and records the merged config.
   */
  async create(image: { name: string; resolved: ResolvedImage }, opts: CreateContainerOpts = {}): Promise<Container> {
    const r = image.resolved;
    const ic: ImageRunConfig = r.config.value.config ?? {};
    const id = randomBytes(32).toString('hex');
    const sn = this.#berth.snapshotter(this.ns.name);
    const chain = chainIDs(r.config.value.rootfs.diff_ids);
    const top = chain.at(-1);
    if (top !== undefined && !sn.has(top, 'committed')) await unpackUnderLease(this.ns, sn, r.manifestDesc);
    const host: ContainerHostConfig = {
      Binds: [],
      Tmpfs: {},
      NetworkMode: 'none',
      Memory: 0,
      NanoCpus: 0,
      PidsLimit: 0,
      Ulimits: [],
      Init: false,
      Privileged: false,
      ReadonlyRootfs: false,
      CapAdd: [],
      CapDrop: [],
      SecurityOpt: [],
      AutoRemove: false,
      GroupAdd: [],
      ...opts.host,
    };
    capabilitySet({ capAdd: host.CapAdd, capDrop: host.CapDrop }); // validates the names now, not at start
    const entrypoint = opts.entrypoint ?? ic.Entrypoint ?? null;
    const config: ContainerRunConfig = {
      Hostname: opts.hostname ?? id.slice(0, 12),
      User: opts.user ?? ic.User ?? '',
      Env: overrideEnv(ic.Env ?? [], opts.env ?? []),
      Cmd: opts.cmd && opts.cmd.length > 0 ? opts.cmd : opts.entrypoint ? [] : (ic.Cmd ?? []),
      Entrypoint: entrypoint && entrypoint.length > 0 ? entrypoint : null,
      WorkingDir: opts.workingDir ?? ic.WorkingDir ?? '',
      Labels: { ...(ic.Labels ?? {}), ...(opts.labels ?? {}) },
      Tty: opts.tty ?? false,
      OpenStdin: opts.openStdin ?? false,
      Image: image.name,
    };
    const stopSignal = opts.stopSignal ?? ic.StopSignal;
    if (stopSignal) config.StopSignal = stopSignal;
    if (opts.stopTimeout !== undefined) config.StopTimeout = opts.stopTimeout;
    if (ic.Volumes) config.Volumes = ic.Volumes;
    processArgs({ Entrypoint: config.Entrypoint, Cmd: config.Cmd }, {});
    if (config.WorkingDir !== '' && !config.WorkingDir.startsWith('/')) {
      throw new InvalidArgumentError(`the working directory "${config.WorkingDir}" is invalid: it needs to be an absolute path`);
    }

    const paths = this.paths(id);
    mkdirSync(paths.rootfs, { recursive: true, mode: 0o700 });
    const record = {
      id,
      name: '',
      image: image.name,
      imageId: r.config.digest,
      snapshotter: sn.driver,
      snapshotKey: id,
      config: { Config: config, HostConfig: host, Manifest: r.manifestDesc } satisfies StoredContainerConfig,
      state: { status: 'created' } as ContainerState,
      labels: opts.labels ?? {},
    };
    let rec: Container | undefined;
    try {
      for (let attempt = 0; !rec; attempt++) {
        const name = opts.name ?? `${pick(adjectives)}_${pick(surnames)}${attempt > 2 ? attempt : ''}`;
        try {
          rec = this.ns.containers.create({ ...record, name });
        } catch (err) {
          if (opts.name !== undefined || !hasCode(err, 'ALREADY_EXISTS') || attempt > 20) throw err;
        }
      }
      await sn.prepare(id, { ...(top !== undefined ? { parent: top } : {}), labels: { 'berth.container': id } });
    } catch (err) {
      if (rec) this.ns.containers.delete(id);
      rmSync(paths.dir, { recursive: true, force: true });
      throw err;
    }
    return rec;
  }

  /** The container named by an ID, a unique ID prefix or a name, with its state brought up to date. */
  async get(ref: string): Promise<Container> {
    return this.refresh(this.ns.containers.find<StoredContainerConfig>(ref));
  }

  /** Every container of the namespace, newest first, each with its state brought up to date. */
  async list(): Promise<Container[]> {
    const out: Container[] = [];
    for (const rec of this.ns.containers.list<StoredContainerConfig>()) {
      try {
        out.push(await this.refresh(rec));
      } catch (err) {
        if (!hasCode(err, 'NOT_FOUND')) throw err; // removed meanwhile (--rm)
      }
    }
    return out;
  }

  /**
   * Brings a running container's state up to date with what the monitor left: an exit code (the
   * container is then cleaned up), a monitor that died, or a machine that restarted.
   */
  async refresh(rec: Container): Promise<Container> {
    if (rec.state.status !== 'running' || this.#stillRunning(rec)) return rec;
    const done = await this.#locked(rec.id, () => this.#refreshUnlocked(rec.id));
    if (done.state.status === 'exited' && done.config.HostConfig.AutoRemove) await this.#autoRemove(done.id);
    return done;
  }

  /**
   * Records the exit of a container whose monitor has written it and releases what it held while
   * running (runc state, rootfs mount); removes it when it was started with AutoRemove. Idempotent:
   * the monitor's exit command and any later command may both call it.
   */
  async cleanup(ref: string): Promise<Container> {
    return this.refresh(this.ns.containers.find<StoredContainerConfig>(ref));
  }

  /** Running, as far as the files tell: no exit code yet, the monitor alive, the same boot. */
  #stillRunning(rec: Container): boolean {
    if (exitStatus(this.paths(rec.id).persist)) return false;
    return (
      rec.state.bootId === bootId() && rec.state.monitorPid !== undefined && processStart(rec.state.monitorPid) === rec.state.monitorStart
    );
  }

  /** refresh() for a caller that holds the lock: a container found stopped is recorded as exited and released. */
  async #refreshUnlocked(id: string): Promise<Container> {
    const rec = this.ns.containers.find<StoredContainerConfig>(id);
    if (rec.state.status !== 'running' || this.#stillRunning(rec)) return rec;
    const p = this.paths(id);
    const exit = exitStatus(p.persist);
    const state: ContainerState = { ...rec.state, status: 'exited', finishedAt: exit ? exitTime(p.persist) : new Date().toISOString() };
    delete state.pid;
    if (exit) {
      state.exitCode = exit.exitCode;
      state.oomKilled = exit.oomKilled;
    } else {
      // The monitor is gone (or the machine restarted) without an exit code: what is left is killed.
      state.exitCode = null;
      state.error =
        rec.state.bootId !== bootId()
          ? 'the machine restarted while the container ran'
          : 'its monitor ended without recording an exit status';
    }
    // The record first: a crash after it leaves state that start and remove release again.
    this.ns.containers.setState(id, state);
    const done = { ...rec, state };
    await this.#release(done, { removeSnapshot: exit !== undefined && rec.config.HostConfig.AutoRemove, killFirst: !exit });
    return done;
  }

  async #autoRemove(id: string): Promise<void> {
    await this.remove(id, { force: true }).catch((err) => {
      if (!hasCode(err, 'NOT_FOUND')) throw err;
    });
  }

  /**
   * With the lock held, for a stopped container: deletes the runc state (killing what is left),
   * unmounts the rootfs and, when asked, removes the writable snapshot. The runc part runs beside
   * the rest unless processes may still hold the rootfs (`killFirst`).
   */
  async #release(rec: Container, opts: { removeSnapshot?: boolean; killFirst?: boolean } = {}): Promise<void> {
    const p = this.paths(rec.id);
    const ours = async () => {
      await rm(join(p.exitDir, rec.id), { force: true });
      if (isMountPoint(p.rootfs)) await unmount(p.rootfs);
      if (opts.removeSnapshot) {
        await this.#snapshots(rec)
          .remove(rec.snapshotKey)
          .catch((err) => {
            if (!hasCode(err, 'NOT_FOUND')) throw err;
          });
      }
    };
    if (opts.killFirst) await this.runc.delete(rec.id, { force: true });
    const results = await Promise.allSettled([this.runc.delete(rec.id, { force: true }), ours()]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * Starts a created or exited container. With `attach`, connects to its output before it runs (so
   * nothing is missed) and leaves the exit to the caller; without, the monitor cleans up at exit
   * by running `berth container cleanup`.
   */
  async start(
    ref: string,
    opts: { attach?: boolean; size?: { rows: number; cols: number } } = {},
  ): Promise<{ container: Container; monitor?: Monitor; attachment?: Attachment }> {
    const found = this.ns.containers.find<StoredContainerConfig>(ref);
    return this.#locked(found.id, async () => {
      const rec = await this.#refreshUnlocked(found.id);
      if (rec.state.status === 'running') return { container: rec };
      const p = this.paths(rec.id);
      await this.runc.delete(rec.id, { force: true });
      await rm(p.persist, { recursive: true, force: true });
      mkdirSync(p.persist, { recursive: true });
      mkdirSync(p.exitDir, { recursive: true });
      mkdirSync(p.socketDir, { recursive: true });
      await rm(join(p.exitDir, rec.id), { force: true });
      const sn = this.#snapshots(rec);
      if (!isMountPoint(p.rootfs)) await mountAll(await sn.mounts(rec.snapshotKey), p.rootfs);
      let monitor: Monitor;
      try {
        const spec = this.#spec(rec);
        await writeFile(p.spec, JSON.stringify(spec));
        monitor = await launchMonitor({
          id: rec.id,
          name: rec.name,
          runc: this.runc,
          paths: { bundle: p.dir, log: p.log, exitDir: p.exitDir, persistDir: p.persist, socketDir: p.socketDir },
          tty: rec.config.Config.Tty,
          stdin: rec.config.Config.OpenStdin,
          ...(opts.size ? { size: opts.size } : {}),
          ...(opts.attach ? {} : { exitCommand: this.#cleanupCommand(rec.id) }),
        });
      } catch (err) {
        await unmount(p.rootfs).catch(() => {});
        throw err;
      }
      let attachment: Attachment | undefined;
      try {
        if (opts.attach) attachment = attach(p.dir);
        await this.runc.start(rec.id);
      } catch (err) {
        attachment?.close();
        monitor.release();
        await this.runc.delete(rec.id, { force: true });
        await unmount(p.rootfs).catch(() => {});
        throw err;
      }
      const state: ContainerState = {
        status: 'running',
        pid: monitor.pid,
        monitorPid: monitor.monitorPid,
        monitorStart: processStart(monitor.monitorPid) as number,
        bootId: bootId(),
        startedAt: new Date().toISOString(),
        restartCount: rec.state.startedAt ? (rec.state.restartCount ?? 0) + 1 : 0,
      };
      this.ns.containers.setState(rec.id, state);
      if (!opts.attach) monitor.release();
      const container = { ...rec, state };
      return { container, monitor, ...(attachment ? { attachment } : {}) };
    });
  }

  #cleanupCommand(id: string): string[] {
    return [process.execPath, cliEntry(), '--root', this.#berth.root, '--namespace', this.ns.name, 'container', 'cleanup', id];
  }

  /** The runtime spec of a container about to start: its rootfs is mounted. */
  #spec(rec: Container): RuntimeSpec {
    const { Config: c, HostConfig: h } = rec.config;
    const p = this.paths(rec.id);
    const user = resolveUser(p.rootfs, c.User, h.GroupAdd);
    const cwd = c.WorkingDir || '/';
    const cwdHost = confined(() => resolveInRoot(p.rootfs, cwd, { mkdir: true }), `working directory "${cwd}"`);
    if (!statSync(cwdHost).isDirectory()) throw new InvalidArgumentError(`working directory "${cwd}": not a directory in the image`);
    let args = processArgs({ Entrypoint: c.Entrypoint, Cmd: c.Cmd }, {});
    const mounts: SpecMount[] = [];
    const target = (dest: string, dir: boolean) => {
      if (!dest.startsWith('/')) throw new InvalidArgumentError(`invalid mount target "${dest}": it must be an absolute path`);
      const host = confined(() => resolveInRoot(p.rootfs, posix.dirname(dest), { mkdir: true }), `mount target "${dest}"`);
      const leaf = join(host, posix.basename(dest));
      if (!existsSync(leaf)) {
        if (dir) mkdirSync(leaf);
        else writeFileSync(leaf, '', { flag: 'wx' });
      }
    };
    // The files docker manages: /etc/hostname, /etc/hosts, /etc/resolv.conf.
    writeFileSync(join(p.dir, 'hostname'), `${c.Hostname}\n`);
    writeFileSync(
      join(p.dir, 'hosts'),
      h.NetworkMode === 'host'
        ? readFileSync('/etc/hosts', 'utf8')
        : `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${c.Hostname}\n`,
    );
    if (existsSync('/etc/resolv.conf')) copyFileSync('/etc/resolv.conf', join(p.dir, 'resolv.conf'));
    else writeFileSync(join(p.dir, 'resolv.conf'), '');
    for (const f of ['hostname', 'hosts', 'resolv.conf']) {
      const dest = `/etc/${f}`;
      const resolved = resolveInRoot(p.rootfs, dest);
      if (existsSync(resolved) && statSync(resolved).isDirectory()) continue;
      target(dest, false);
      mounts.push({
        destination: dest,
        type: 'bind',
        source: join(p.dir, f),
        options: ['rbind', 'rprivate', ...(h.ReadonlyRootfs ? ['ro'] : [])],
      });
    }
    for (const v of Object.keys(c.Volumes ?? {})) confined(() => resolveInRoot(p.rootfs, v, { mkdir: true }), `volume "${v}"`);
    for (const b of h.Binds) {
      const { source, destination, readOnly } = parseBind(b);
      if (!existsSync(source)) mkdirSync(source, { recursive: true });
      target(destination, statSync(source).isDirectory());
      mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', readOnly ? 'ro' : 'rw'] });
    }
    for (const [dest, o] of Object.entries(h.Tmpfs)) {
      target(dest, true);
      mounts.push({
        destination: dest,
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'noexec', ...o.split(',').filter(Boolean)],
      });
    }
    if (h.Init) {
      const tini = lookPath('tini-static');
      target('/sbin/docker-init', false);
      mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: tini, options: ['rbind', 'rprivate', 'ro'] });
      args = ['/sbin/docker-init', '--', ...args];
    }
    const sec = securityOpts(h.SecurityOpt);
    return buildSpec({
      args,
      env: mergeEnv(c.Env, [], { hostname: c.Hostname, home: user.home, tty: c.Tty }),
      cwd,
      user,
      rootfs: p.rootfs,
      hostname: c.Hostname,
      tty: c.Tty,
      readonlyRootfs: h.ReadonlyRootfs,
      privileged: h.Privileged,
      capAdd: h.CapAdd,
      capDrop: h.CapDrop,
      seccomp: sec.seccomp,
      noNewPrivileges: sec.noNewPrivileges,
      network: h.NetworkMode,
      mounts,
      cgroupsPath: `/berth/${rec.id}`,
      resources: {
        ...(h.Memory > 0 ? { memory: h.Memory } : {}),
        ...(h.NanoCpus > 0 ? { nanoCpus: h.NanoCpus } : {}),
        ...(h.PidsLimit > 0 ? { pidsLimit: h.PidsLimit } : {}),
      },
      ...(h.Ulimits.length
        ? { rlimits: h.Ulimits.map((u) => ({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard })) }
        : {}),
    });
  }

  /**
   * Disk usage of a container: its writable layer (docker's SizeRw; with the native snapshotter, the
   * whole copy), and everything removing it frees (the snapshot's directory and the container's files).
   */
  async usage(rec: Container): Promise<{ writable: number; removable: number }> {
    const du = (p: string) =>
      diskUsage(p).then(
        (u) => u.size,
        () => 0,
      );
    const sn = this.#snapshots(rec);
    let writable = 0;
    let removable = 0;
    if (sn.has(rec.snapshotKey)) {
      const dir = sn.dirOf(rec.snapshotKey);
      writable = await du(dir);
      removable = await du(dirname(dir));
    }
    return { writable, removable: removable + (await du(this.paths(rec.id).dir)) };
  }

  /** docker's GraphDriver.Data: the writable layer (UpperDir), the image's layers (LowerDir) and the mount point. */
  graphDriverData(rec: Container): Record<string, string> {
    const sn = this.#snapshots(rec);
    const data: Record<string, string> = { MergedDir: this.paths(rec.id).rootfs };
    try {
      const row = sn.row(rec.snapshotKey);
      if (sn.impl.whiteouts === 'overlay') {
        data.UpperDir = sn.dirOf(rec.snapshotKey);
        data.WorkDir = join(data.UpperDir, '..', 'work');
        if (row.parent !== null)
          data.LowerDir = sn.records
            .chain(row.parent)
            .map((r) => sn.impl.fsDir(r.id))
            .join(':');
      } else data.Dir = sn.dirOf(rec.snapshotKey);
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND')) throw err;
    }
    return data;
  }

  /** Sends a signal (name like `TERM`, `SIGTERM`, or a number) to a running container's init process. */
  async kill(ref: string, signal: string | number = 'KILL'): Promise<Container> {
    const rec = await this.get(ref);
    if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
    await this.runc.kill(rec.id, normalizeSignal(signal));
    return rec;
  }

  /**
   * Stops a running container: its StopSignal (default SIGTERM), then SIGKILL after `timeout`
   * seconds (its StopTimeout, default 10). Returns the container after its exit is recorded.
   */
  async stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<Container> {
    let rec = await this.get(ref);
    if (rec.state.status !== 'running') return rec;
    const timeout = opts.timeout ?? rec.config.Config.StopTimeout ?? 10;
    const signal = opts.signal ?? rec.config.Config.StopSignal ?? 'TERM';
    await this.runc.kill(rec.id, normalizeSignal(signal)).catch(ignoreNotRunning);
    rec = await this.wait(rec.id, { timeout: timeout * 1000 });
    if (rec.state.status === 'running') {
      await this.runc.kill(rec.id, 'KILL').catch(ignoreNotRunning);
      rec = await this.wait(rec.id);
    }
    return rec;
  }

  /** Waits until the container is not running (or `timeout` ms pass), and returns it. */
  async wait(ref: string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<Container> {
    const deadline = opts.timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.timeout;
    let rec = await this.get(ref);
    let delay = 5;
    while (rec.state.status === 'running' && Date.now() < deadline) {
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())), undefined, { signal: opts.signal });
      delay = Math.min(delay * 2, 100);
      rec = await this.refresh(this.ns.containers.find<StoredContainerConfig>(rec.id));
    }
    return rec;
  }

  /** Removes a container, its writable snapshot and its files. @throws FailedPreconditionError while it runs, unless forced */
  async remove(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    let rec = await this.get(ref);
    if (rec.state.status === 'running') {
      if (!opts.force) {
        throw new FailedPreconditionError(
          `cannot remove container "${rec.name}": container is running: stop the container before removing or force remove`,
        );
      }
      await this.runc.kill(rec.id, 'KILL').catch(ignoreNotRunning);
      rec = await this.wait(rec.id, { timeout: 10_000 });
    }
    await this.#locked(rec.id, async () => {
      const cur = await this.#refreshUnlocked(rec.id);
      if (cur.state.status === 'running') throw new FailedPreconditionError(`cannot remove container "${cur.name}": it is running again`);
      await this.#release(cur, { removeSnapshot: true });
      this.ns.containers.delete(cur.id);
    });
    await rm(this.paths(rec.id).dir, { recursive: true, force: true });
  }

  async rename(ref: string, name: string): Promise<void> {
    const rec = this.ns.containers.find(ref);
    this.ns.containers.rename(rec.id, name);
  }

  /**
   * Writes the process spec of an exec into a running container (its command, env over the
   * container's, working directory and user resolved in its rootfs, the container's capabilities)
   * and returns the runc arguments that run it.
   */
  async execArgs(ref: string, opts: ExecOpts): Promise<{ container: Container; runcArgs: string[]; cleanup: () => void }> {
    const rec = await this.get(ref);
    if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
    if (opts.cmd.length === 0) throw new InvalidArgumentError('exec: no command given');
    const p = this.paths(rec.id);
    const spec = JSON.parse(await readFile(p.spec, 'utf8')) as RuntimeSpec;
    const user = opts.user !== undefined ? resolveUser(p.rootfs, opts.user) : undefined;
    const env = overrideEnv(spec.process.env, opts.env ?? []);
    const proc: Process = {
      ...spec.process,
      terminal: opts.tty ?? false,
      args: opts.cmd,
      env,
      cwd: opts.workingDir ?? spec.process.cwd,
      ...(user
        ? { user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) } }
        : {}),
    };
    if (opts.privileged) {
      const all = capabilitySet({ privileged: true });
      proc.capabilities = { bounding: all, effective: all, permitted: all };
    }
    const file = join(p.dir, `exec-${randomBytes(6).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify(proc));
    return {
      container: rec,
      runcArgs: [...this.runc.globalArgs, 'exec', '--process', file, ...(opts.tty ? ['--tty'] : []), rec.id],
      cleanup: () => rmSync(file, { force: true }),
    };
  }

  /** `ps` of the container's processes (docker top). */
  async top(ref: string, psArgs?: string[]): Promise<string> {
    const rec = await this.get(ref);
    if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
    return this.runc.ps(rec.id, psArgs);
  }

  /** Makes an image of the container: its writable layer's changes as a new layer on its image. */
  async commit(
    ref: string,
    opts: { name?: string; changes?: string[]; comment?: string; author?: string; signal?: AbortSignal } = {},
  ): Promise<CommitResult> {
    const rec = await this.get(ref);
    const base = await resolveImage(this.ns.content, rec.config.Manifest, platformMatcher(hostPlatform()), opts);
    const c = rec.config.Config;
    let config: ImageRunConfig = {
      ...(base.config.value.config ?? {}),
      Env: c.Env,
      Cmd: c.Cmd,
      Entrypoint: c.Entrypoint ?? undefined,
      WorkingDir: c.WorkingDir,
      User: c.User,
      Labels: c.Labels,
    };
    if (c.StopSignal) config.StopSignal = c.StopSignal;
    for (const change of opts.changes ?? []) config = applyChange(config, change);
    const layer = this.#snapshots(rec).diff(rec.snapshotKey, { signal: opts.signal });
    return commitImage(this.ns, base, layer, {
      ...(opts.name ? { name: opts.name } : {}),
      config,
      createdBy: [...(c.Entrypoint ?? []), ...c.Cmd].join(' '),
      ...(opts.comment ? { comment: opts.comment } : {}),
      ...(opts.author ? { author: opts.author } : {}),
    });
  }

  /**
   * The container's filesystem as one tar, as `docker export` gives it: the image's layers with the
   * container's changes, without its mounts. A running container's root is read where it is
   * mounted; a stopped one's writable layer is mounted aside meanwhile, under the container's lock
   * so that it is not started at the same time. `sink` consumes the tar.
   */
  async exportFs(ref: string, sink: (tar: AsyncIterable<Uint8Array>) => Promise<void>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const rec = await this.get(ref);
    const { rootfs, dir } = this.paths(rec.id);
    if (isMountPoint(rootfs)) {
      await sink(diffTrees(undefined, rootfs, opts));
      return;
    }
    await this.#locked(rec.id, async () => {
      const target = join(dir, 'export');
      mkdirSync(target, { recursive: true });
      await mountAll(await this.#snapshots(rec).mounts(rec.snapshotKey), target);
      try {
        await sink(diffTrees(undefined, target, opts));
      } finally {
        await unmount(target);
        rmSync(target, { recursive: true, force: true });
      }
    });
  }
}

/** Runs a path resolution, naming what was resolved in its error. */
function confined<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    throw withContext(err, what);
  }
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}

function exitTime(persist: string): string {
  try {
    return statSync(join(persist, 'exit')).mtime.toISOString();
  } catch {
    return new Date().toISOString();
  }
}

/** `-v HOST:CONTAINER[:ro|rw]`. @throws InvalidArgumentError */
export function parseBind(spec: string): { source: string; destination: string; readOnly: boolean; mode: string } {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3)
    throw new InvalidArgumentError(`invalid volume specification "${spec}" (want HOST:CONTAINER[:ro])`);
  const [source = '', destination = '', mode = 'rw'] = parts;
  if (!source.startsWith('/')) {
    throw new InvalidArgumentError(
      `invalid volume specification "${spec}": the host path must be absolute (named volumes are not supported yet)`,
    );
  }
  if (!destination.startsWith('/'))
    throw new InvalidArgumentError(`invalid volume specification "${spec}": the container path must be absolute`);
  const opts = mode.split(',');
  if (!opts.every((o) => o === 'ro' || o === 'rw' || o === 'z' || o === 'Z'))
    throw new InvalidArgumentError(`invalid volume mode "${mode}" in "${spec}"`);
  return {
    source: posix.normalize(source),
    destination: posix.normalize(destination),
    readOnly: opts.includes('ro'),
    mode: parts[2] ?? '',
  };
}

/** `--security-opt` values: `seccomp=unconfined|FILE`, `no-new-privileges[=true|false]`. */
function securityOpts(opts: readonly string[]): { seccomp: 'default' | 'unconfined' | LinuxSeccomp; noNewPrivileges: boolean } {
  let seccomp: 'default' | 'unconfined' | LinuxSeccomp = 'default';
  let noNewPrivileges = false;
  for (const o of opts) {
    const [k, v] = o.includes('=') ? [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] : [o, undefined];
    if (k === 'no-new-privileges') noNewPrivileges = v === undefined || v === 'true';
    else if (k === 'seccomp') seccomp = v === 'unconfined' ? 'unconfined' : v ? loadSeccompProfile(v) : 'default';
    else throw new InvalidArgumentError(`invalid --security-opt "${o}" (want seccomp=unconfined|PROFILE.json or no-new-privileges)`);
  }
  return { seccomp, noNewPrivileges };
}

/** A seccomp profile in docker's format (what `--security-opt seccomp=FILE` takes), as the OCI form runc reads. */
export function loadSeccompProfile(file: string): LinuxSeccomp {
  let p: {
    defaultAction?: string;
    defaultErrnoRet?: number;
    architectures?: string[];
    archMap?: { architecture: string; subArchitectures?: string[] | null }[];
    syscalls?: (Partial<SeccompSyscall> & { name?: string; action: string; includes?: { caps?: string[]; arches?: string[] } })[];
  };
  try {
    p = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`seccomp profile "${file}": ${(err as Error).message}`);
  }
  if (typeof p?.defaultAction !== 'string') throw new InvalidArgumentError(`seccomp profile "${file}": no defaultAction`);
  const out: LinuxSeccomp = { defaultAction: p.defaultAction, syscalls: [] };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  const arches = p.architectures ?? (p.archMap ?? []).flatMap((a) => [a.architecture, ...(a.subArchitectures ?? [])]);
  if (arches.length) out.architectures = arches;
  for (const s of p.syscalls ?? []) {
    if (s.includes?.caps?.length || s.includes?.arches?.length) continue; // conditional entries need a capability or an architecture: left out
    const names = s.names ?? (s.name ? [s.name] : []);
    out.syscalls?.push({
      names,
      action: s.action,
      ...(s.errnoRet !== undefined ? { errnoRet: s.errnoRet } : {}),
      ...(s.args ? { args: s.args } : {}),
    });
  }
  return out;
}

function normalizeSignal(signal: string | number): string {
  if (typeof signal === 'number' || /^\d+$/.test(signal)) return String(signal);
  const s = signal.toUpperCase().replace(/^SIG/, '');
  if (!/^[A-Z0-9+-]+$/.test(s)) throw new InvalidArgumentError(`invalid signal "${signal}"`);
  return s;
}

function ignoreNotRunning(err: unknown): void {
  if (/not running|does not exist|process already finished/.test((err as Error).message)) return;
  throw err;
}
