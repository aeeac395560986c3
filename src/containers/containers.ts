import { FailedPreconditionError } from '../errdefs/index.js';
import type { CommitResult, ResolvedImage } from '../images/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import type { EndpointRequest, NetworkRecord } from '../network/index.js';
import {
  type Attachment,
  attach,
  exitStatus,
  type LogRecord,
  type ReadLogOpts,
  type Runc,
  readLog,
  reopenLog,
  resize,
} from '../runtime/index.js';
import { type Change, containerChanges, type PathStat, readPath, statPath, writePath } from './archive.js';
import { commitContainer, exportContainerFs } from './commit.js';
import { ContainerContext } from './context.js';
import { createContainer } from './create.js';
import { type ExecProcess, execArgs, spawnExec, top } from './exec.js';
import { containerUsage, graphDriverData } from './inspect.js';
import {
  type ContainerUpdate,
  getContainer,
  killContainer,
  listContainers,
  pauseContainer,
  refresh,
  removeContainer,
  type StartOpts,
  type StartResult,
  startContainer,
  stopContainer,
  updateContainer,
  waitContainer,
} from './lifecycle.js';
import { checkNetworks, connectNetwork, disconnectNetwork, releaseNetworks } from './network.js';
import { type CgroupStats, cgroupPath, cgroupStats } from './stats.js';
import type { Container, ContainerHost, ContainerObserver, CreateContainerOpts, ExecOpts } from './types.js';

/**
 * The containers of one namespace: create (a writable snapshot on the image), start (conmon runs
 * `runc create`, berth runs `runc start`), the state reconciled from the monitor's files, stop,
 * kill, remove, exec and commit. The front ends (CLI, Engine API) call this and nothing below it.
 * Several processes may work on one root: each container's changes of state are serialised by a
 * file lock in its directory.
 */
export class Containers {
  readonly #ctx: ContainerContext;

  constructor(host: ContainerHost, namespace: string, observer?: ContainerObserver) {
    this.#ctx = new ContainerContext(host, namespace, observer);
  }

  get ns(): NamespaceScope {
    return this.#ctx.ns;
  }

  /** runc, with this root's state directory. */
  get runc(): Runc {
    return this.#ctx.runc;
  }

  /** The directories and files of one container. */
  paths(id: string): ReturnType<ContainerContext['paths']> {
    return this.#ctx.paths(id);
  }

  /** Where the container's monitor writes its log. */
  logPath(rec: Container): string {
    return this.#ctx.logPath(rec);
  }

  /** See {@link createContainer}. */
  create(image: { name: string; resolved: ResolvedImage }, opts: CreateContainerOpts = {}): Promise<Container> {
    return createContainer(this.#ctx, image, opts);
  }

  /** The container named by an ID, a unique ID prefix or a name, with its state brought up to date. */
  get(ref: string): Promise<Container> {
    return getContainer(this.#ctx, ref);
  }

  /** Every container of the namespace, newest first, each with its state brought up to date. */
  list(): Promise<Container[]> {
    return listContainers(this.#ctx);
  }

  /** Brings a running container's state up to date with what its monitor left. */
  refresh(rec: Container): Promise<Container> {
    return refresh(this.#ctx, rec);
  }

  /**
   * Records the exit of a container whose monitor has written it and releases what it held while
   * running (runc state, rootfs mount); removes it when it was started with AutoRemove. Idempotent:
   * the monitor's exit command and any later command may both call it.
   */
  cleanup(ref: string): Promise<Container> {
    return getContainer(this.#ctx, ref);
  }

  /** Starts a created or exited container; with `attach`, connected to its output before it runs. */
  start(ref: string, opts: StartOpts = {}): Promise<StartResult> {
    return startContainer(this.#ctx, ref, opts);
  }

  /** Sends a signal (`TERM`, `SIGTERM` or a number) to a running container's init process. */
  kill(ref: string, signal: string | number = 'KILL'): Promise<Container> {
    return killContainer(this.#ctx, ref, signal);
  }

  /** StopSignal, then SIGKILL after `timeout` seconds; returns the container after its exit is recorded. */
  stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<Container> {
    return stopContainer(this.#ctx, ref, opts);
  }

  /** Waits until the container is not running (or `timeout` ms pass), and returns it. */
  wait(ref: string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<Container> {
    return waitContainer(this.#ctx, ref, opts);
  }

  /** Removes a container, its writable snapshot and its files (with `volumes`, its anonymous volumes). @throws FailedPreconditionError while it runs, unless forced */
  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return removeContainer(this.#ctx, ref, opts);
  }

  /** A reading of a container's cgroup (memory, CPU time, pids), as docker's stats. */
  stats(rec: Container): CgroupStats {
    return cgroupStats(cgroupPath(rec));
  }

  /** Changes limits and the restart policy (docker update): recorded, and applied now when it runs. */
  update(ref: string, update: ContainerUpdate): Promise<Container> {
    return updateContainer(this.#ctx, ref, update);
  }

  /** Freezes a running container's processes (docker pause); `unpause` thaws them. */
  pause(ref: string): Promise<Container> {
    return pauseContainer(this.#ctx, ref, true);
  }

  unpause(ref: string): Promise<Container> {
    return pauseContainer(this.#ctx, ref, false);
  }

  /** Joins a network (docker network connect): now when it runs, and at its next starts. */
  connect(ref: string, network: NetworkRecord, request: EndpointRequest = {}): Promise<Container> {
    return connectNetwork(this.#ctx, ref, network, request);
  }

  /** Leaves a network (docker network disconnect). */
  disconnect(ref: string, network: NetworkRecord): Promise<Container> {
    return disconnectNetwork(this.#ctx, ref, network);
  }

  /** CNI CHECK of a running container's attachments: the problems, by network (fsck's check). */
  checkNetworks(rec: Container): Promise<{ network: string; problem: string }[]> {
    return checkNetworks(this.#ctx, rec);
  }

  /** Releases the network attachments of a container that is not running (fsck's repair of leftovers). */
  async releaseNetworks(rec: Container): Promise<void> {
    await releaseNetworks(this.#ctx, rec);
  }

  async rename(ref: string, name: string): Promise<void> {
    this.#ctx.ns.containers.rename(this.#ctx.find(ref).id, name);
  }

  /** Writes an exec's process spec into a running container and returns the runc arguments that run it. */
  execArgs(ref: string, opts: ExecOpts): Promise<{ container: Container; runcArgs: string[]; cleanup: () => void }> {
    return execArgs(this.#ctx, ref, opts);
  }

  /** Runs a process in a running container (see {@link spawnExec}). */
  spawnExec(ref: string, opts: ExecOpts & { stdin?: boolean; detach?: boolean }): Promise<ExecProcess> {
    return spawnExec(this.#ctx, ref, opts);
  }

  /** `ps` of the container's processes (docker top). */
  top(ref: string, psArgs?: string[]): Promise<string> {
    return top(this.#ctx, ref, psArgs);
  }

  /** Makes an image of the container: its writable layer's changes as a new layer on its image. */
  commit(
    ref: string,
    opts: { name?: string; changes?: string[]; comment?: string; author?: string; signal?: AbortSignal } = {},
  ): Promise<CommitResult> {
    return commitContainer(this.#ctx, ref, opts);
  }

  /** The container's filesystem as one tar (docker export), handed to `sink`. */
  exportFs(ref: string, sink: (tar: AsyncIterable<Uint8Array>) => Promise<void>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return exportContainerFs(this.#ctx, ref, sink, opts);
  }

  /** What the container changed over its image (docker diff). */
  changes(ref: string, opts: { signal?: AbortSignal } = {}): Promise<Change[]> {
    return containerChanges(this.#ctx, ref, opts);
  }

  /** docker cp's stat of a path in the container (links in its directory followed inside the root). */
  statPath(ref: string, path: string): Promise<PathStat> {
    return statPath(this.#ctx, ref, path);
  }

  /** A path of the container as a tar (docker cp out of it), handed to `sink` with its stat. */
  readPath(
    ref: string,
    path: string,
    sink: (stat: PathStat, tar: AsyncIterable<Uint8Array>) => Promise<void>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    return readPath(this.#ctx, ref, path, sink, opts);
  }

  /** Extracts a tar into a directory of the container (docker cp into it), confined to that directory. */
  writePath(ref: string, path: string, tar: AsyncIterable<Uint8Array>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return writePath(this.#ctx, ref, path, tar, opts);
  }

  /** Disk usage: the writable layer (docker's SizeRw) and everything removing the container frees. */
  usage(rec: Container): Promise<{ writable: number; removable: number }> {
    return containerUsage(this.#ctx, rec);
  }

  /** docker's GraphDriver.Data. */
  graphDriverData(rec: Container): Record<string, string> {
    return graphDriverData(this.#ctx, rec);
  }

  /**
   * The container's output as its log keeps it; with `follow`, new records as they come until the
   * container stops (its state is looked at every 250 ms).
   */
  logs(rec: Container, opts: Omit<ReadLogOpts, 'follow'> & { follow?: boolean } = {}): AsyncGenerator<LogRecord> {
    const { follow: wanted, ...rest } = opts;
    let running = rec.state.status === 'running';
    let lastCheck = Date.now();
    const follow = () => {
      if (!wanted || !running) return false;
      if (Date.now() - lastCheck > 250) {
        lastCheck = Date.now();
        try {
          running = this.#ctx.find(rec.id).state.status === 'running' && !exitStatus(this.paths(rec.id).persist);
        } catch {
          running = false; // removed
        }
      }
      return true;
    };
    return readLog(this.#ctx.logPath(rec), { ...rest, follow });
  }

  /** Connects to a running container's stdio through its monitor (any number of connections at once). */
  attach(id: string): Attachment {
    return attach(this.paths(id).dir);
  }

  /** Has the monitor of a running container reopen its log (CRI's ReopenContainerLog, after a rotation). */
  async reopenLog(ref: string): Promise<void> {
    const rec = await getContainer(this.#ctx, ref);
    if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id} is not running`);
    reopenLog(this.paths(rec.id).dir);
  }

  /** Sets the terminal size of a running container started with a TTY. */
  resize(id: string, size: { rows: number; cols: number }): void {
    resize(this.paths(id).dir, size);
  }
}
