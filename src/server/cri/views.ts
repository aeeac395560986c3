import { posix } from 'node:path';
import { type PodContainer, type Sandbox, statusMounts } from '../../pods/index.js';

// CRI's shapes of berth's pods and containers (snake_case, as the proto has them; int64 as strings).

/** A time in nanoseconds since the epoch, as CRI's int64 fields carry it; 0 for none. */
export function nanos(t: string | Date | undefined): string {
  if (t === undefined) return '0';
  const ms = typeof t === 'string' ? Date.parse(t) : t.getTime();
  if (!Number.isFinite(ms) || ms <= 0) return '0';
  // the sub-millisecond digits of an RFC 3339 time, when it has them
  const frac = typeof t === 'string' ? (/\.(\d+)/.exec(t)?.[1] ?? '') : '';
  const sub = Number(frac.padEnd(9, '0').slice(3, 9));
  return String(BigInt(ms) * 1_000_000n + BigInt(sub));
}

export function sandboxMetadata(sb: Sandbox) {
  const m = sb.pod.config.metadata ?? {};
  return { name: m.name ?? '', uid: m.uid ?? '', namespace: m.namespace ?? '', attempt: m.attempt ?? 0 };
}

export function podSandbox(sb: Sandbox) {
  return {
    id: sb.id,
    metadata: sandboxMetadata(sb),
    state: sb.state,
    created_at: nanos(sb.container.createdAt),
    labels: sb.pod.config.labels ?? {},
    annotations: sb.pod.config.annotations ?? {},
    runtime_handler: sb.pod.runtimeHandler,
  };
}

export function podSandboxStatus(sb: Sandbox) {
  const nsOpts = sb.pod.config.linux?.security_context?.namespace_options ?? {};
  return {
    ...podSandbox(sb),
    network: { ip: sb.pod.ip ?? '', additional_ips: [] },
    linux: {
      namespaces: {
        options: { network: nsOpts.network ?? 'POD', pid: nsOpts.pid ?? 'POD', ipc: nsOpts.ipc ?? 'POD', target_id: '' },
      },
    },
  };
}

const containerMetadata = (c: PodContainer) => ({ name: c.ext.config.metadata?.name ?? '', attempt: c.ext.config.metadata?.attempt ?? 0 });

export function criContainer(c: PodContainer) {
  return {
    id: c.id,
    pod_sandbox_id: c.ext.sandboxId,
    metadata: containerMetadata(c),
    image: { image: c.ext.image, annotations: c.ext.config.image?.annotations ?? {} },
    image_ref: c.ext.imageRef,
    image_id: c.ext.imageId,
    state: c.state,
    created_at: nanos(c.container.createdAt),
    labels: c.ext.config.labels ?? {},
    annotations: c.ext.config.annotations ?? {},
  };
}

/** ContainerStatus: with the exit, why it ended, its mounts and where its log is. */
export function containerStatus(c: PodContainer, logPath: string) {
  const st = c.container.state;
  const exited = c.state === 'CONTAINER_EXITED';
  const code = st.exitCode ?? (exited ? 255 : 0);
  const r = c.ext.config.linux?.resources;
  return {
    ...criContainer(c),
    started_at: nanos(st.startedAt),
    finished_at: exited ? nanos(st.finishedAt) : '0',
    exit_code: exited ? code : 0,
    reason: exited ? (st.oomKilled ? 'OOMKilled' : code === 0 ? 'Completed' : 'Error') : '',
    message: st.error ?? '',
    mounts: statusMounts(c),
    log_path: c.ext.config.log_path ? posix.normalize(logPath) : '',
    ...(r ? { resources: { linux: r } } : {}),
  };
}
