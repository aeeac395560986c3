import type * as grpc from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errdefs/index.js';
import {
  type ContainerConfig,
  containerStats,
  createPodContainer,
  execSync,
  type LinuxContainerResources,
  type PodContainer,
  type PodEvent,
  type PodSandboxConfig,
  podContainer,
  podStats,
  removePodContainer,
  type Sandbox,
  startPodContainer,
  stopPodContainer,
  updatePodContainer,
} from '../../pods/index.js';
import type { CriContext, Handler } from './context.js';
import { containerStatus, criContainer, nanos, podSandbox, podSandboxStatus } from './views.js';

// RuntimeService: translation only; the pods service does the work.

type Req<T> = T & Record<string, unknown>;

const labelsMatch = (have: Record<string, string> | undefined, want: Record<string, string> | undefined) =>
  Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);

const eventTypes = {
  created: 'CONTAINER_CREATED_EVENT',
  started: 'CONTAINER_STARTED_EVENT',
  stopped: 'CONTAINER_STOPPED_EVENT',
  deleted: 'CONTAINER_DELETED_EVENT',
};

export function runtimeService(ctx: CriContext): Record<string, Handler | ((call: grpc.ServerWritableStream<unknown, unknown>) => void)> {
  const { pods } = ctx;
  const status = (c: PodContainer) => containerStatus(c, pods.containers.logPath(c.container));
  const runningContainer = async (id: string) => {
    const c = await podContainer(pods, id);
    if (c.state !== 'CONTAINER_RUNNING') throw new FailedPreconditionError(`container ${c.id} is not running`);
    return c;
  };
  /** The streams asked for: one at least, and no stderr apart from stdout on a terminal. */
  const streams = (r: { tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }) => {
    const s = { tty: r.tty ?? false, stdin: r.stdin ?? false, stdout: r.stdout ?? false, stderr: r.stderr ?? false };
    if (!s.stdin && !s.stdout && !s.stderr) throw new InvalidArgumentError('one of stdin, stdout and stderr must be true');
    if (s.tty && s.stderr) throw new InvalidArgumentError('tty and stderr cannot both be true: a terminal has one output');
    return s;
  };
  const handlers: Record<string, Handler> = {
    Version: async () => ({ version: '0.1.0', runtime_name: 'berth', runtime_version: ctx.version, runtime_api_version: 'v1' }),
    Status: async (req: Req<{ verbose?: boolean }>) => {
      const net = pods.networkStatus();
      return {
        status: {
          conditions: [
            { type: 'RuntimeReady', status: true, reason: '', message: '' },
            { type: 'NetworkReady', status: net.ready, reason: net.reason ?? '', message: net.message ?? '' },
          ],
        },
        info: req.verbose
          ? {
              config: JSON.stringify({
                root: pods.berth.root,
                namespace: pods.ns.name,
                cniConfDir: pods.cniConfDir,
                runtime: 'runc',
                cgroupDriver: 'cgroupfs',
              }),
            }
          : {},
        runtime_handlers: ['', 'runc'].map((name) => ({ name, features: { recursive_read_only_mounts: false, user_namespaces: false } })),
        features: { supplemental_groups_policy: false },
      };
    },
    RuntimeConfig: async () => ({ linux: { cgroup_driver: 'CGROUPFS' } }),
    UpdateRuntimeConfig: async () => ({}),
    ListMetricDescriptors: async () => ({ descriptors: [] }),
    ListPodSandboxMetrics: async () => ({ pod_metrics: [] }),

    RunPodSandbox: async (req: Req<{ config?: PodSandboxConfig; runtime_handler?: string }>) => ({
      pod_sandbox_id: await pods.runSandbox(req.config ?? {}, req.runtime_handler ?? ''),
    }),
    StopPodSandbox: async (req: Req<{ pod_sandbox_id: string }>) => {
      await pods.stopSandbox(req.pod_sandbox_id);
      return {};
    },
    RemovePodSandbox: async (req: Req<{ pod_sandbox_id: string }>) => {
      await pods.removeSandbox(req.pod_sandbox_id);
      return {};
    },
    PodSandboxStatus: async (req: Req<{ pod_sandbox_id: string; verbose?: boolean }>) => {
      const sb = await pods.sandbox(req.pod_sandbox_id);
      return {
        status: podSandboxStatus(sb),
        info: req.verbose ? { info: JSON.stringify(sandboxInfo(sb)) } : {},
        timestamp: nanos(new Date()),
      };
    },
    ListPodSandbox: async (req: Req<{ filter?: { id?: string; state?: { state?: string }; label_selector?: Record<string, string> } }>) => {
      const f = req.filter ?? {};
      const items = (await pods.sandboxes()).filter(
        (sb) =>
          (!f.id || sb.id.startsWith(f.id)) &&
          (!f.state || sb.state === (f.state.state ?? 'SANDBOX_READY')) &&
          labelsMatch(sb.pod.config.labels, f.label_selector),
      );
      return { items: items.map(podSandbox) };
    },

    CreateContainer: async (req: Req<{ pod_sandbox_id: string; config?: ContainerConfig; sandbox_config?: PodSandboxConfig }>) => ({
      container_id: await createPodContainer(pods, req.pod_sandbox_id, req.config ?? {}, req.sandbox_config),
    }),
    StartContainer: async (req: Req<{ container_id: string }>) => {
      await startPodContainer(pods, req.container_id);
      return {};
    },
    StopContainer: async (req: Req<{ container_id: string; timeout?: string }>) => {
      await stopPodContainer(pods, req.container_id, Number(req.timeout ?? 0));
      return {};
    },
    RemoveContainer: async (req: Req<{ container_id: string }>) => {
      await removePodContainer(pods, req.container_id);
      return {};
    },
    ListContainers: async (
      req: Req<{ filter?: { id?: string; state?: { state?: string }; pod_sandbox_id?: string; label_selector?: Record<string, string> } }>,
    ) => {
      const f = req.filter ?? {};
      const all = await pods.podContainers();
      const items = all.filter(
        (c) =>
          (!f.id || c.id.startsWith(f.id)) &&
          (!f.state || c.state === (f.state.state ?? 'CONTAINER_CREATED')) &&
          (!f.pod_sandbox_id || c.ext.sandboxId.startsWith(f.pod_sandbox_id)) &&
          labelsMatch(c.ext.config.labels, f.label_selector),
      );
      return { containers: items.map(criContainer) };
    },
    ContainerStatus: async (req: Req<{ container_id: string; verbose?: boolean }>) => {
      const c = await podContainer(pods, req.container_id);
      return {
        status: status(c),
        info: req.verbose
          ? {
              info: JSON.stringify({
                pid: c.container.state.pid ?? 0,
                sandboxID: c.ext.sandboxId,
                config: c.ext.config,
                hostConfig: c.container.config.HostConfig,
              }),
            }
          : {},
      };
    },
    UpdateContainerResources: async (req: Req<{ container_id: string; linux?: LinuxContainerResources }>) => {
      await updatePodContainer(pods, req.container_id, req.linux ?? {});
      return {};
    },
    ReopenContainerLog: async (req: Req<{ container_id: string }>) => {
      const c = await podContainer(pods, req.container_id);
      await pods.containers.reopenLog(c.id);
      return {};
    },
    ExecSync: async (req: Req<{ container_id: string; cmd?: string[]; timeout?: string }>) => {
      const r = await execSync(pods, req.container_id, req.cmd ?? [], Number(req.timeout ?? 0));
      return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
    },
    ContainerStats: async (req: Req<{ container_id: string }>) => ({
      stats: await containerStats(pods, await podContainer(pods, req.container_id)),
    }),
    ListContainerStats: async (
      req: Req<{ filter?: { id?: string; pod_sandbox_id?: string; label_selector?: Record<string, string> } }>,
    ) => {
      const f = req.filter ?? {};
      const running = (await pods.podContainers()).filter(
        (c) =>
          c.state === 'CONTAINER_RUNNING' &&
          (!f.id || c.id.startsWith(f.id)) &&
          (!f.pod_sandbox_id || c.ext.sandboxId.startsWith(f.pod_sandbox_id)) &&
          labelsMatch(c.ext.config.labels, f.label_selector),
      );
      return { stats: await Promise.all(running.map((c) => containerStats(pods, c))) };
    },
    PodSandboxStats: async (req: Req<{ pod_sandbox_id: string }>) => ({
      stats: await podStats(pods, await pods.sandbox(req.pod_sandbox_id)),
    }),
    ListPodSandboxStats: async (req: Req<{ filter?: { id?: string; label_selector?: Record<string, string> } }>) => {
      const f = req.filter ?? {};
      const ready = (await pods.sandboxes()).filter(
        (sb) => sb.state === 'SANDBOX_READY' && (!f.id || sb.id.startsWith(f.id)) && labelsMatch(sb.pod.config.labels, f.label_selector),
      );
      return { stats: await Promise.all(ready.map((sb) => podStats(pods, sb))) };
    },
    Exec: async (
      req: Req<{ container_id: string; cmd?: string[]; tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }>,
    ) => {
      const c = await runningContainer(req.container_id);
      const s = streams(req);
      if (!req.cmd?.length) throw new InvalidArgumentError('exec: no command given');
      return { url: ctx.streaming.url({ kind: 'exec', containerId: c.id, cmd: req.cmd, ...s }) };
    },
    Attach: async (req: Req<{ container_id: string; tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }>) => {
      const c = await runningContainer(req.container_id);
      if ((req.tty ?? false) !== (c.ext.config.tty ?? false))
        throw new InvalidArgumentError(`attach: tty must match the container's (${c.ext.config.tty ?? false})`);
      if (req.stdin && !c.ext.config.stdin) throw new InvalidArgumentError('attach: the container was not created with stdin');
      return { url: ctx.streaming.url({ kind: 'attach', containerId: c.id, ...streams(req) }) };
    },
    PortForward: async (req: Req<{ pod_sandbox_id: string; port?: number[] }>) => {
      const sb = await pods.sandbox(req.pod_sandbox_id);
      return { url: ctx.streaming.url({ kind: 'portforward', sandboxId: sb.id, ports: req.port ?? [] }) };
    },
  };
  return {
    ...handlers,
    /** A stream of container and pod events until the client goes away. */
    GetContainerEvents: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      // in the order they happened: each waits for the one before
      let queue = Promise.resolve();
      const send = (e: PodEvent) => {
        queue = queue.then(async () => {
          let sandbox: Sandbox | undefined;
          try {
            sandbox = await pods.sandbox(e.sandboxId);
          } catch {} // removed
          const statuses: unknown[] = [];
          if (e.id !== e.sandboxId && e.type !== 'deleted') {
            try {
              statuses.push(status(await podContainer(pods, e.id)));
            } catch {}
          }
          call.write({
            container_id: e.id,
            container_event_type: eventTypes[e.type],
            created_at: nanos(new Date()),
            ...(sandbox ? { pod_sandbox_status: podSandboxStatus(sandbox) } : {}),
            containers_statuses: statuses,
          });
        });
      };
      pods.events.on('event', send);
      const stop = () => pods.events.off('event', send);
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
}

function sandboxInfo(sb: Sandbox) {
  return {
    pid: sb.container.state.pid ?? 0,
    netns: sb.pod.netns ?? '',
    image: sb.container.image,
    runtimeHandler: sb.pod.runtimeHandler,
    config: sb.pod.config,
  };
}
