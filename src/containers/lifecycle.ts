import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FailedPreconditionError, hasCode, InvalidArgumentError } from '../errdefs/index.js';
import type { ContainerState } from '../metadata/index.js';
import { deleteNetns, type Endpoint, netnsPath } from '../network/index.js';
import { type Attachment, attach, exitStatus, launchMonitor, type Monitor } from '../runtime/index.js';
import { isMountPoint, mountAll, unmount } from '../snapshots/index.js';
import { cliEntry, MS, mount as sysMount } from '../sys/index.js';
import type { ContainerContext } from './context.js';
import { mountPoints, prepareVolumes } from './mounts.js';
import { attachedNetworkIds, attachNetworks, planNetwork, releaseNetworks, syncHosts } from './network.js';
import { containerSpec } from './spec.js';
import type { Container, ContainerHostConfig, StoredContainerConfig } from './types.js';

// A container's life: started by conmon (which runs `runc create`) and `runc start`; its state
// reconciled from the monitor's files by whichever process looks next; stopped, killed, removed.

let currentBoot: string | undefined;
/** This boot's ID: a container recorded under another one is not running any more. */
function bootId(): string {
  currentBoot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return currentBoot;
}

/**
 * A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined when
 * it is gone or a zombie (an exited conmon waits there until init reaps it, which can take seconds).
 */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** The container named by an ID, a unique ID prefix or a name, with its state brought up to date. */
export async function getContainer(ctx: ContainerContext, ref: string): Promise<Container> {
  return refresh(ctx, ctx.find(ref));
}

/** Every container of the namespace, newest first, each with its state brought up to date. */
export async function listContainers(ctx: ContainerContext): Promise<Container[]> {
  const out: Container[] = [];
  for (const rec of ctx.ns.containers.list<StoredContainerConfig>()) {
    try {
      out.push(await refresh(ctx, rec));
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
export async function refresh(ctx: ContainerContext, rec: Container): Promise<Container> {
  if (rec.state.status !== 'running' || stillRunning(ctx, rec)) return rec;
  const done = await ctx.locked(rec.id, () => refreshUnlocked(ctx, rec.id));
  if (done.state.status === 'exited' && done.config.HostConfig.AutoRemove) await autoRemove(ctx, done.id);
  return done;
}

/** Running, as far as the files tell: no exit code yet, the monitor alive, the same boot. */
function stillRunning(ctx: ContainerContext, rec: Container): boolean {
  if (exitStatus(ctx.paths(rec.id).persist)) return false;
  return (
    rec.state.bootId === bootId() && rec.state.monitorPid !== undefined && processStart(rec.state.monitorPid) === rec.state.monitorStart
  );
}

/** refresh() for a caller that holds the lock: a container found stopped is recorded as exited and released. */
async function refreshUnlocked(ctx: ContainerContext, id: string): Promise<Container> {
  const rec = ctx.find(id);
  if (rec.state.status !== 'running' || stillRunning(ctx, rec)) return rec;
  const p = ctx.paths(id);
  const exit = exitStatus(p.persist);
  const state: ContainerState = { ...rec.state, status: 'exited', finishedAt: exit ? exitTime(p.persist) : new Date().toISOString() };
  delete state.pid;
  delete state.netns; // release takes the namespace by its path
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
  ctx.ns.containers.setState(id, state);
  const done = { ...rec, state };
  ctx.observer.exited?.(done);
  // The namespace it ran in, for the release: after a reboot it is gone, but the addresses it held are not.
  const ran = rec.state.netns ? { ...done, state: { ...state, netns: rec.state.netns } } : done;
  await release(ctx, ran, { removeSnapshot: exit !== undefined && rec.config.HostConfig.AutoRemove, killFirst: !exit });
  return done;
}

async function autoRemove(ctx: ContainerContext, id: string): Promise<void> {
  // docker's --rm takes the anonymous volumes with the container.
  await removeContainer(ctx, id, { force: true, volumes: true }).catch((err) => {
    if (!hasCode(err, 'NOT_FOUND')) throw err;
  });
}

/**
 * With the lock held, for a stopped container: deletes the runc state (killing what is left),
 * unmounts the rootfs and, when asked, removes the writable snapshot. The runc part runs beside
 * the rest unless processes may still hold the rootfs (`killFirst`).
 */
async function release(ctx: ContainerContext, rec: Container, opts: { removeSnapshot?: boolean; killFirst?: boolean } = {}): Promise<void> {
  const p = ctx.paths(rec.id);
  const ours = async () => {
    await rm(join(p.exitDir, rec.id), { force: true });
    if (isMountPoint(p.rootfs)) await unmount(p.rootfs);
    // a shared /dev/shm goes with its owner's run (those that joined it have stopped with it)
    if (isMountPoint(p.shm)) await unmount(p.shm);
    if (opts.removeSnapshot) {
      await ctx
        .snapshots(rec)
        .remove(rec.snapshotKey)
        .catch((err) => {
          if (!hasCode(err, 'NOT_FOUND')) throw err;
        });
    }
  };
  const network = async () => {
    // By its path too: a start killed before it recorded the namespace leaves one.
    const netns = netnsPath(rec.id);
    if (!existsSync(netns) && !rec.state.netns) return;
    await releaseNetworks(ctx, { ...rec, state: { ...rec.state, netns } });
    await syncHosts(ctx, attachedNetworkIds(rec));
  };
  if (opts.killFirst) await ctx.runc.delete(rec.id, { force: true });
  // The network first: its DEL is the longest of the three.
  const results = await Promise.allSettled([network(), ctx.runc.delete(rec.id, { force: true }), ours()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

export interface StartOpts {
  /** Connect to the container's output before it runs (nothing is missed) and leave the exit to the caller. */
  attach?: boolean;
  /** The terminal size to set before the process starts. */
  size?: { rows: number; cols: number };
  /**
   * Whether the monitor runs `berth container cleanup` at the exit (default: unless `attach`);
   * without it the caller watches `monitor.exited` and records the exit.
   */
  exitCommand?: boolean;
  /** Called with the bundle once the monitor holds the created container, before it runs (attach clients connect here). */
  beforeStart?: (bundle: string) => void;
}

export interface StartResult {
  container: Container;
  /** The monitor, when this call started it; `exited` is watched unless the exit command runs. */
  monitor?: Monitor;
  attachment?: Attachment;
}

/**
 * Starts a created or exited container. With `attach`, connects to its output before it runs (so
 * nothing is missed) and leaves the exit to the caller; without, the monitor cleans up at exit
 * by running `berth container cleanup`.
 */
export async function startContainer(ctx: ContainerContext, ref: string, opts: StartOpts = {}): Promise<StartResult> {
  const found = ctx.find(ref);
  return ctx.locked(found.id, async () => {
    const rec = await refreshUnlocked(ctx, found.id);
    if (rec.state.status === 'running') return { container: rec };
    const p = ctx.paths(rec.id);
    // The CNI plugins attach the namespace from now on, while the rest gets ready and conmon and
    // runc create the container in it.
    const plan = await planNetwork(ctx, rec);
    const attaching = attachNetworks(ctx, rec, plan);
    attaching.catch(() => {}); // settled below, on every path
    const exitCommand = opts.exitCommand ?? !opts.attach;
    let monitor: Monitor | undefined;
    let endpoints: Record<string, Endpoint>;
    try {
      // runc's state of an earlier run, if any (a process spared when there is none)
      if (existsSync(join(ctx.host.runDir, 'runc', rec.id))) await ctx.runc.delete(rec.id, { force: true });
      await rm(p.persist, { recursive: true, force: true });
      mkdirSync(p.persist, { recursive: true });
      mkdirSync(p.exitDir, { recursive: true });
      mkdirSync(p.socketDir, { recursive: true });
      await rm(join(p.exitDir, rec.id), { force: true });
      if (!isMountPoint(p.rootfs)) await mountAll(await ctx.snapshots(rec).mounts(rec.snapshotKey), p.rootfs);
      if (rec.config.HostConfig.IpcMode === 'shareable' && !isMountPoint(p.shm)) {
        mkdirSync(p.shm, { recursive: true, mode: 0o755 });
        sysMount('shm', p.shm, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=1777,size=65536k');
      }
      const volumePaths = await prepareVolumes(ctx, rec, p.rootfs);
      const spec = containerSpec(ctx, rec, plan, volumePaths);
      await writeFile(p.spec, JSON.stringify(spec));
      const log = ctx.logPath(rec);
      mkdirSync(dirname(log), { recursive: true });
      monitor = await launchMonitor({
        id: rec.id,
        name: rec.name,
        runc: ctx.runc,
        paths: { bundle: p.dir, log, exitDir: p.exitDir, persistDir: p.persist, socketDir: p.socketDir },
        tty: rec.config.Config.Tty,
        stdin: rec.config.Config.OpenStdin,
        ...(opts.size ? { size: opts.size } : {}),
        ...(exitCommand ? { exitCommand: cleanupCommand(ctx, rec.id) } : {}),
      });
      endpoints = await attaching;
    } catch (err) {
      if (monitor) {
        monitor.release();
        await ctx.runc.delete(rec.id, { force: true }).catch(() => {});
      }
      // A failed ADD undid itself; a good one is undone here.
      if (
        plan.ownNetns &&
        (await attaching.then(
          () => true,
          () => false,
        ))
      ) {
        await releaseNetworks(ctx, rec, { netns: plan.ownNetns, attachments: plan.attachments }).catch(() => {});
      }
      if (plan.ownNetns) await deleteNetns(rec.id).catch(() => {});
      await unmount(p.rootfs).catch(() => {});
      throw err;
    }
    const networkState: Partial<ContainerState> = plan.ownNetns ? { networks: endpoints, ports: plan.ports, netns: plan.ownNetns } : {};
    // Its own /etc/hosts names it and its peers before it runs; theirs learn of it once recorded.
    await syncHosts(ctx, attachedNetworkIds({ ...rec, state: { ...rec.state, ...networkState } }), {
      ...rec,
      state: { ...rec.state, status: 'running', ...networkState },
    });
    let attachment: Attachment | undefined;
    try {
      if (opts.attach) attachment = attach(p.dir);
      opts.beforeStart?.(p.dir);
      await ctx.runc.start(rec.id);
    } catch (err) {
      attachment?.close();
      monitor.release();
      await ctx.runc.delete(rec.id, { force: true });
      await releaseNetworks(ctx, { ...rec, state: { ...rec.state, ...networkState } }).catch(() => {});
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
      ...networkState,
    };
    ctx.ns.containers.setState(rec.id, state);
    if (exitCommand) monitor.release();
    await syncHosts(ctx, attachedNetworkIds({ ...rec, state }));
    const container = { ...rec, state };
    return { container, monitor, ...(attachment ? { attachment } : {}) };
  });
}

function cleanupCommand(ctx: ContainerContext, id: string): string[] {
  return [process.execPath, cliEntry(), '--root', ctx.host.root, '--namespace', ctx.ns.name, 'container', 'cleanup', id];
}

/** Sends a signal (name like `TERM`, `SIGTERM`, or a number) to a running container's init process. */
export async function killContainer(ctx: ContainerContext, ref: string, signal: string | number = 'KILL'): Promise<Container> {
  const rec = await getContainer(ctx, ref);
  if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
  await ctx.runc.kill(rec.id, normalizeSignal(signal));
  await thaw(ctx, rec);
  return rec;
}

/**
 * Stops a running container: its StopSignal (default SIGTERM), then SIGKILL after `timeout`
 * seconds (its StopTimeout, default 10). Returns the container after its exit is recorded.
 */
export async function stopContainer(
  ctx: ContainerContext,
  ref: string,
  opts: { timeout?: number; signal?: string } = {},
): Promise<Container> {
  let rec = await getContainer(ctx, ref);
  if (rec.state.status !== 'running') return rec;
  const timeout = opts.timeout ?? rec.config.Config.StopTimeout ?? 10;
  const signal = opts.signal ?? rec.config.Config.StopSignal ?? 'TERM';
  await ctx.runc.kill(rec.id, normalizeSignal(signal)).catch(ignoreNotRunning);
  await thaw(ctx, rec);
  rec = await waitContainer(ctx, rec.id, { timeout: timeout * 1000 });
  if (rec.state.status === 'running') {
    await ctx.runc.kill(rec.id, 'KILL').catch(ignoreNotRunning);
    rec = await waitContainer(ctx, rec.id);
  }
  return rec;
}

/** Waits until the container is not running (or `timeout` ms pass), and returns it. */
export async function waitContainer(
  ctx: ContainerContext,
  ref: string,
  opts: { timeout?: number; signal?: AbortSignal } = {},
): Promise<Container> {
  const deadline = opts.timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.timeout;
  let rec = await getContainer(ctx, ref);
  let delay = 5;
  while (rec.state.status === 'running' && Date.now() < deadline) {
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())), undefined, { signal: opts.signal });
    delay = Math.min(delay * 2, 100);
    rec = await refresh(ctx, ctx.find(rec.id));
  }
  return rec;
}

/** Freezes (`paused`) or thaws a running container's processes. @throws FailedPreconditionError unless it runs */
export async function pauseContainer(ctx: ContainerContext, ref: string, paused: boolean): Promise<Container> {
  const found = ctx.find(ref);
  return ctx.locked(found.id, async () => {
    const rec = await refreshUnlocked(ctx, found.id);
    if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id} is not running`);
    if ((rec.state.paused ?? false) === paused) {
      throw new FailedPreconditionError(`container ${rec.id} is ${paused ? 'already paused' : 'not paused'}`);
    }
    await (paused ? ctx.runc.pause(rec.id) : ctx.runc.resume(rec.id));
    const state = { ...rec.state, paused };
    ctx.ns.containers.setState(rec.id, state);
    return { ...rec, state };
  });
}

/** What `update` may change: the resource limits and the restart policy. */
export type ContainerUpdate = Partial<
  Pick<ContainerHostConfig, 'Memory' | 'NanoCpus' | 'PidsLimit' | 'RestartPolicy' | 'CpuShares' | 'CpuQuota' | 'CpuPeriod'>
>;

/**
 * Changes a container's limits and restart policy (docker update): recorded for its next start,
 * and applied now to a running one through runc. @throws InvalidArgumentError for a negative limit
 */
export async function updateContainer(ctx: ContainerContext, ref: string, update: ContainerUpdate): Promise<Container> {
  for (const k of ['Memory', 'NanoCpus', 'PidsLimit', 'CpuShares', 'CpuPeriod'] as const) {
    const v = update[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new InvalidArgumentError(`invalid ${k} ${v}`);
  }
  const found = ctx.find(ref);
  return ctx.locked(found.id, async () => {
    const rec = await refreshUnlocked(ctx, found.id);
    const host = { ...rec.config.HostConfig, ...update };
    if (rec.state.status === 'running') {
      const flags: string[] = [];
      if (update.Memory !== undefined) flags.push('--memory', String(update.Memory > 0 ? update.Memory : -1));
      if (update.NanoCpus !== undefined) {
        flags.push('--cpu-period', '100000', '--cpu-quota', String(update.NanoCpus > 0 ? Math.round(update.NanoCpus / 1e4) : -1));
      }
      if (update.PidsLimit !== undefined) flags.push('--pids-limit', String(update.PidsLimit > 0 ? update.PidsLimit : -1));
      if (update.CpuShares) flags.push('--cpu-share', String(update.CpuShares));
      if (update.CpuPeriod) flags.push('--cpu-period', String(update.CpuPeriod));
      if (update.CpuQuota) flags.push('--cpu-quota', String(update.CpuQuota));
      if (flags.length) await ctx.runc.update(rec.id, flags);
    }
    const config = { ...rec.config, HostConfig: host };
    ctx.ns.containers.setConfig(rec.id, config);
    return { ...rec, config };
  });
}

/** A paused container is thawed before it is signalled: a frozen process takes no signal. */
async function thaw(ctx: ContainerContext, rec: Container): Promise<void> {
  if (rec.state.paused) await pauseContainer(ctx, rec.id, false).catch(() => {});
}

/**
 * Removes a container, its writable snapshot and its files; with `volumes`, its anonymous volumes
 * no other container mounts. @throws FailedPreconditionError while it runs, unless forced
 */
export async function removeContainer(
  ctx: ContainerContext,
  ref: string,
  opts: { force?: boolean; volumes?: boolean } = {},
): Promise<void> {
  let rec = await getContainer(ctx, ref);
  if (rec.state.status === 'running') {
    if (!opts.force) {
      throw new FailedPreconditionError(
        `cannot remove container "${rec.name}": container is running: stop the container before removing or force remove`,
      );
    }
    await ctx.runc.kill(rec.id, 'KILL').catch(ignoreNotRunning);
    await thaw(ctx, rec);
    rec = await waitContainer(ctx, rec.id, { timeout: 10_000 });
  }
  await ctx.locked(rec.id, async () => {
    const cur = await refreshUnlocked(ctx, rec.id);
    if (cur.state.status === 'running') throw new FailedPreconditionError(`cannot remove container "${cur.name}": it is running again`);
    await release(ctx, cur, { removeSnapshot: true });
    ctx.ns.containers.delete(cur.id);
    ctx.observer.removed?.(cur);
  });
  // conmon may still be writing its last files (exit, oom) into the directory as it ends.
  const { monitorPid, monitorStart } = rec.state;
  for (let i = 0; i < 100 && monitorPid !== undefined && processStart(monitorPid) === monitorStart; i++) await sleep(20);
  await rm(ctx.paths(rec.id).dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  if (opts.volumes) {
    const others = ctx.ns.containers.list<Container['config']>().flatMap((c) => mountPoints(c).map((m) => m.Name));
    for (const m of mountPoints(rec)) {
      if (m.Anonymous && m.Name && !others.includes(m.Name)) await ctx.host.volumes.remove(m.Name).catch(() => {});
    }
  }
}

function exitTime(persist: string): string {
  try {
    return statSync(join(persist, 'exit')).mtime.toISOString();
  } catch {
    return new Date().toISOString();
  }
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
