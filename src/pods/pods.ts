import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname as hostName } from 'node:os';
import type { Container, Containers } from '../containers/index.js';
import { hasCode, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import type { Berth } from '../services/index.js';
import { ensurePauseImage } from './pause-image.js';
import { attachPod, defaultCniConfDir, detachPod, podNetnsPath, podNetworkStatus } from './pod-network.js';
import {
  type ContainerState,
  containerKey,
  type PodContainerExtension,
  type PodExtension,
  type PodSandboxConfig,
  podKey,
  type SandboxState,
  sandboxLabel,
  typeLabel,
} from './types.js';

export interface PodsOpts {
  /** Where the pods' CNI network config is read (default /etc/cni/net.d, as kubelet's runtimes). */
  cniConfDir?: string;
}

/** A pod sandbox: the berth container of its pause process, and what CRI gave for it. */
export interface Sandbox {
  id: string;
  container: Container;
  pod: PodExtension;
  state: SandboxState;
}

/** A container of a pod. */
export interface PodContainer {
  id: string;
  container: Container;
  ext: PodContainerExtension;
  state: ContainerState;
}

/** What happened to a pod or one of its containers, for CRI's GetContainerEvents. */
export interface PodEvent {
  /** The container's ID, or the sandbox's for a pod's own events. */
  id: string;
  type: 'created' | 'started' | 'stopped' | 'deleted';
  sandboxId: string;
}

/** The namespace CRI works in, as containerd keeps `k8s.io` for kubelet. */
export const criNamespace = 'k8s.io';

/** A part of a berth container's name (kubelet's names already fit; anything else becomes `-`). */
export const namePart = (s: string | number | undefined) => String(s ?? '').replace(/[^a-zA-Z0-9_.-]/g, '-');

/**
 * Kubernetes pods on berth, as CRI describes them: each pod a sandbox (a pause process holding the
 * network, IPC and UTS namespaces the pod's containers join), and its containers; all berth
 * containers of the `k8s.io` namespace, labelled with what they are, CRI's own configs kept in
 * their records. Front ends (the CRI server) translate and call this.
 */
export class Pods {
  readonly berth: Berth;
  readonly containers: Containers;
  readonly cniConfDir: string;
  /** `event` (PodEvent) as this process changes pods and their containers, and as it sees exits. */
  readonly events = new EventEmitter();
  #pause: ReturnType<typeof ensurePauseImage> | undefined;

  constructor(berth: Berth, opts: PodsOpts = {}) {
    this.berth = berth;
    this.cniConfDir = opts.cniConfDir ?? defaultCniConfDir;
    this.events.setMaxListeners(0);
    this.containers = berth.containers(criNamespace, {
      exited: (rec) => {
        if (rec.labels[typeLabel]) this.emit({ id: rec.id, type: 'stopped', sandboxId: rec.labels[sandboxLabel] ?? rec.id });
      },
    });
  }

  get ns() {
    return this.containers.ns;
  }

  readonly #stopped = new Set<string>();

  emit(e: PodEvent): void {
    // an exit is heard twice, recorded here and from the exits directory; CRI starts a container once
    if (e.type === 'stopped') {
      if (this.#stopped.has(e.id)) return;
      this.#stopped.add(e.id);
    } else if (e.type === 'deleted') this.#stopped.delete(e.id);
    this.events.emit('event', e);
  }

  #exitWatcher: FSWatcher | undefined;

  /** Hears the exits of the namespace's containers (written by their monitors) as `stopped` events, until {@link close}. */
  async watchExits(): Promise<void> {
    const dir = this.containers.paths('x').exitDir;
    await mkdir(dir, { recursive: true });
    this.#exitWatcher = watch(dir, (_t, file) => {
      const id = String(file ?? '');
      if (!/^[a-f0-9]{64}$/.test(id)) return;
      void this.containers
        .get(id)
        .then((rec) => {
          if (rec.state.status === 'exited' && rec.labels[typeLabel])
            this.emit({ id, type: 'stopped', sandboxId: rec.labels[sandboxLabel] ?? id });
        })
        .catch(() => {}); // another namespace's, or removed meanwhile
    });
    this.#exitWatcher.on('error', () => {});
  }

  close(): void {
    this.#exitWatcher?.close();
  }

  /** Whether pods can get a network now (CRI's NetworkReady). */
  networkStatus(): ReturnType<typeof podNetworkStatus> {
    return podNetworkStatus(this.cniConfDir);
  }

  /** The pause image, made once per process (concurrent pods wait for the same one). */
  pauseImage(): ReturnType<typeof ensurePauseImage> {
    this.#pause ??= ensurePauseImage(this.ns).catch((err) => {
      this.#pause = undefined;
      throw err;
    });
    return this.#pause;
  }

  /** Replaces what CRI keeps under `key` in a container's record. */
  setExtension(id: string, key: string, value: unknown): void {
    const rec = this.ns.containers.find<Container['config']>(id);
    this.ns.containers.setConfig(id, { ...rec.config, Extensions: { ...rec.config.Extensions, [key]: value } });
  }

  /** Every sandbox of the namespace, newest first. */
  async sandboxes(): Promise<Sandbox[]> {
    return (await this.containers.list()).filter((c) => c.labels[typeLabel] === 'sandbox').map(sandboxOf);
  }

  /** The sandbox an ID (or unique ID prefix) names. @throws NotFoundError */
  async sandbox(ref: string): Promise<Sandbox> {
    const rec = await this.containers.get(ref).catch((err) => {
      throw hasCode(err, 'NOT_FOUND') ? new NotFoundError(`pod sandbox "${ref}" not found`) : err;
    });
    if (rec.labels[typeLabel] !== 'sandbox') throw new NotFoundError(`pod sandbox "${ref}" not found`);
    return sandboxOf(rec);
  }

  /**
   * RunPodSandbox: records the sandbox, makes and attaches its network namespace (unless it uses
   * the host's), and starts its pause process. The record comes first: a crash at any later point
   * leaves one that was never started, which {@link recover} takes apart. On a failure nothing is left.
   */
  async runSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    if (runtimeHandler !== '' && runtimeHandler !== 'runc')
      throw new NotFoundError(`runtime handler "${runtimeHandler}" is not known: berth has "runc" (the default)`);
    const m = config.metadata ?? {};
    if (!m.name || !m.uid || !m.namespace) throw new InvalidArgumentError('pod sandbox metadata needs name, uid and namespace');
    const pause = await this.pauseImage();
    const sec = config.linux?.security_context ?? {};
    const nsOpts = sec.namespace_options ?? {};
    const hostNet = nsOpts.network === 'NODE';
    const id = randomBytes(32).toString('hex');
    const hostname = config.hostname || (hostNet ? hostName() : m.name);
    const pod: PodExtension = { config, runtimeHandler };
    const rec = await this.containers.create(pause, {
      id,
      name: `k8s_POD_${namePart(m.name)}_${namePart(m.namespace)}_${namePart(m.uid)}_${m.attempt ?? 0}`,
      hostname,
      labels: {
        [typeLabel]: 'sandbox',
        'io.kubernetes.pod.name': m.name,
        'io.kubernetes.pod.namespace': m.namespace,
        'io.kubernetes.pod.uid': m.uid,
      },
      host: {
        NetworkMode: hostNet ? 'host' : `ns:${podNetnsPath(id)}`,
        IpcMode: nsOpts.ipc === 'NODE' ? 'host' : 'shareable',
        PidMode: nsOpts.pid === 'NODE' ? 'host' : '',
        UTSMode: hostNet ? 'host' : '',
        ...(config.linux?.cgroup_parent ? { CgroupParent: config.linux.cgroup_parent } : {}),
        ...(config.dns_config?.servers?.length ? { Dns: config.dns_config.servers } : {}),
        ...(config.dns_config?.searches?.length ? { DnsSearch: config.dns_config.searches } : {}),
        ...(config.dns_config?.options?.length ? { DnsOptions: config.dns_config.options } : {}),
        ...(config.linux?.sysctls && Object.keys(config.linux.sysctls).length ? { Sysctls: config.linux.sysctls } : {}),
        ...(sec.readonly_rootfs ? { ReadonlyRootfs: true } : {}),
        Annotations: config.annotations ?? {},
      },
      extensions: { [podKey]: pod },
    });
    try {
      if (!hostNet) {
        const { netns, ip } = await attachPod(this.cniConfDir, id, config);
        const ext: PodExtension = { ...pod, netns, ...(ip ? { ip } : {}) };
        this.ns.containers.setConfig(id, {
          ...rec.config,
          HostConfig: { ...rec.config.HostConfig, ...(ip ? { ExtraHosts: [`${hostname}:${ip}`] } : {}) },
          Extensions: { ...rec.config.Extensions, [podKey]: ext },
        });
      }
      await this.containers.start(id);
    } catch (err) {
      await this.#takeApart(id).catch(() => {});
      throw err;
    }
    this.emit({ id, type: 'created', sandboxId: id });
    this.emit({ id, type: 'started', sandboxId: id });
    return id;
  }

  /**
   * StopPodSandbox: kills the pod's containers and its pause process, and releases its network
   * (address, port rules, namespace). Safe to repeat. @throws NotFoundError
   */
  async stopSandbox(ref: string): Promise<void> {
    const sb = await this.sandbox(ref);
    await Promise.all(
      (await this.podContainers(sb.id))
        .filter((c) => c.state === 'CONTAINER_RUNNING')
        .map((c) => this.containers.stop(c.id, { timeout: 0 })),
    );
    const wasRunning = sb.container.state.status === 'running';
    if (wasRunning) await this.containers.stop(sb.id, { timeout: 0 });
    await this.#releaseNetwork(sb);
  }

  /** RemovePodSandbox: stops it, then removes its containers and itself. A missing pod is not an error. */
  async removeSandbox(ref: string): Promise<void> {
    let sb: Sandbox;
    try {
      sb = await this.sandbox(ref);
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND')) return;
      throw err;
    }
    await this.stopSandbox(sb.id);
    for (const c of await this.podContainers(sb.id)) {
      await this.containers.remove(c.id, { force: true }).catch(ignoreMissing);
      this.emit({ id: c.id, type: 'deleted', sandboxId: sb.id });
    }
    await this.containers.remove(sb.id, { force: true }).catch(ignoreMissing);
    this.emit({ id: sb.id, type: 'deleted', sandboxId: sb.id });
  }

  /** The containers of one pod (every pod's without an ID), newest first. */
  async podContainers(sandboxId?: string): Promise<PodContainer[]> {
    return (await this.containers.list())
      .filter((c) => c.labels[typeLabel] === 'container' && (sandboxId === undefined || c.labels[sandboxLabel] === sandboxId))
      .map(podContainerOf);
  }

  /**
   * Repairs what a daemon killed mid-RunPodSandbox left: sandboxes recorded but never started
   * are taken apart (network, namespace, record); kubelet asks for the pod again. Run at start-up.
   */
  async recover(): Promise<string[]> {
    const repaired: string[] = [];
    for (const sb of await this.sandboxes()) {
      if (sb.container.state.status !== 'created') continue;
      await this.#takeApart(sb.id);
      repaired.push(sb.id);
    }
    return repaired;
  }

  async #releaseNetwork(sb: Sandbox): Promise<void> {
    if (sb.container.config.HostConfig.NetworkMode === 'host') return;
    await detachPod(this.cniConfDir, sb.id, sb.pod.config);
    if (sb.pod.ip || sb.pod.netns) {
      const { ip: _ip, netns: _netns, ...rest } = sb.pod;
      this.setExtension(sb.id, podKey, rest);
    }
  }

  /** A sandbox's network, pause container and record, whatever state it is in. */
  async #takeApart(id: string): Promise<void> {
    const rec = this.ns.containers.find<Container['config']>(id);
    const pod = rec.config.Extensions?.[podKey] as PodExtension;
    if (rec.config.HostConfig.NetworkMode !== 'host') await detachPod(this.cniConfDir, id, pod.config);
    await this.containers.remove(id, { force: true }).catch(ignoreMissing);
  }
}

function ignoreMissing(err: unknown): void {
  if (!hasCode(err, 'NOT_FOUND')) throw err;
}

function sandboxOf(rec: Container): Sandbox {
  return {
    id: rec.id,
    container: rec,
    pod: rec.config.Extensions?.[podKey] as PodExtension,
    state: rec.state.status === 'running' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
  };
}

export function podContainerOf(rec: Container): PodContainer {
  const states: Record<string, ContainerState> = { created: 'CONTAINER_CREATED', running: 'CONTAINER_RUNNING', exited: 'CONTAINER_EXITED' };
  return {
    id: rec.id,
    container: rec,
    ext: rec.config.Extensions?.[containerKey] as PodContainerExtension,
    state: states[rec.state.status] ?? 'CONTAINER_UNKNOWN',
  };
}
