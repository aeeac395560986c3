import { readFileSync } from 'node:fs';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { parseLogTime } from '../../runtime/index.js';
import { buildCacheUsage, volumeUsage, volumeView } from '../../services/index.js';
import { eventFilter } from './events.js';
import { filterList, readJSON, sendJSON } from './http.js';
import { maxAPIVersion, minAPIVersion, type Route } from './router.js';
import { containerItem, imageItems } from './views.js';

const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le' };

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

const cgroupVersion = (): string => {
  try {
    readFileSync('/sys/fs/cgroup/cgroup.controllers');
    return '2';
  } catch {
    return '1';
  }
};

export const systemRoutes: Route[] = [
  {
    method: 'GET',
    pattern: '/_ping',
    handle: async (_e, { res }) => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 });
      res.end('OK');
    },
  },
  {
    method: 'HEAD',
    pattern: '/_ping',
    handle: async (_e, { res }) => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 0 });
      res.end();
    },
  },
  {
    method: 'GET',
    pattern: '/version',
    handle: async (e, { res }) => {
      const details = {
        ApiVersion: maxAPIVersion,
        MinAPIVersion: minAPIVersion,
        GitCommit: '',
        GoVersion: `node ${process.version}`,
        Os: 'linux',
        Arch: goArch[arch()] ?? arch(),
        KernelVersion: release(),
        BuildTime: '',
        Experimental: false,
      };
      // Details is a map of strings in docker's types.
      const stringDetails = Object.fromEntries(Object.entries(details).map(([k, v]) => [k, String(v)]));
      sendJSON(res, 200, {
        Platform: { Name: 'berth' },
        Components: [{ Name: 'Engine', Version: e.opts.version, Details: stringDetails }],
        Version: e.opts.version,
        ...details,
      });
    },
  },
  {
    method: 'GET',
    pattern: '/info',
    handle: async (e, { res }) => {
      const list = await e.containers.list();
      const running = list.filter((c) => c.state.status === 'running').length;
      sendJSON(res, 200, {
        ID: e.berth.root,
        Containers: list.length,
        ContainersRunning: running,
        ContainersPaused: 0,
        ContainersStopped: list.length - running,
        Images: e.containers.ns.images.list().length,
        Driver: e.berth.snapshotterName,
        DriverStatus: [['Root Dir', `${e.berth.root}/snapshots/${e.berth.snapshotterName}`]],
        Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Log: ['k8s-file'] },
        MemoryLimit: true,
        SwapLimit: false,
        CpuCfsPeriod: true,
        CpuCfsQuota: true,
        PidsLimit: true,
        Debug: false,
        LoggingDriver: 'k8s-file',
        CgroupDriver: 'cgroupfs',
        CgroupVersion: cgroupVersion(),
        KernelVersion: release(),
        OperatingSystem: osName(),
        OSType: 'linux',
        Architecture: arch() === 'x64' ? 'x86_64' : arch(),
        NCPU: cpus().length,
        MemTotal: totalmem(),
        IndexServerAddress: 'https://index.docker.io/v1/',
        RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: ['127.0.0.0/8'] },
        DockerRootDir: e.berth.root,
        Name: hostname(),
        Labels: [],
        ExperimentalBuild: false,
        ServerVersion: e.opts.version,
        Runtimes: { runc: { path: e.containers.runc.bin } },
        DefaultRuntime: 'runc',
        Swarm: { LocalNodeState: 'inactive', ControlAvailable: false, NodeID: '', NodeAddr: '', Error: '', RemoteManagers: null },
        LiveRestoreEnabled: true,
        Isolation: '',
        InitBinary: 'catatonit',
        ContainerdCommit: { ID: '' },
        RuncCommit: { ID: '' },
        InitCommit: { ID: '' },
        SecurityOptions: ['name=seccomp,profile=builtin'],
        Warnings: [],
      });
    },
  },
  {
    method: 'GET',
    pattern: '/system/df',
    handle: async (e, { res }) => {
      const usage = await e.berth.imageUsage();
      const mine = usage.images.filter((u) => u.namespace === e.namespace);
      const images = await imageItems(e);
      const counts = new Map(mine.map((u) => [u.name, u]));
      const containers = [];
      for (const c of await e.containers.list()) {
        const u = await e.containers.usage(c);
        containers.push({ ...containerItem(c), SizeRw: u.writable, SizeRootFs: u.writable });
      }
      sendJSON(res, 200, {
        LayersSize: usage.size(mine),
        Images: images.map((i) => {
          const u = counts.get((i as { Name: string }).Name);
          return { ...i, Containers: u?.containers ?? 0, SharedSize: u?.shared ?? -1 };
        }),
        Containers: containers,
        Volumes: (await volumeUsage(e.berth)).map((v) => ({
          ...volumeView(e.berth, v.Volume),
          UsageData: { Size: v.Size, RefCount: v.RefCount },
        })),
        BuildCache: (await buildCacheUsage(e.berth, e.namespace, usage)).map((c) => ({
          ID: c.id.slice(0, 25),
          Parent: '',
          Type: 'regular',
          Description: c.description,
          InUse: false,
          Shared: c.shared,
          Size: c.size,
          CreatedAt: c.createdAt.toISOString(),
          LastUsedAt: null,
          UsageCount: 0,
        })),
      });
    },
  },
  {
    method: 'GET',
    pattern: '/events',
    handle: async (e, { req, res, query }) => {
      const keep = eventFilter(filterList(query));
      const since = query.get('since');
      const until = query.get('until');
      const end = until ? parseLogTime(until) : undefined;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      const send = (ev: object) => res.write(`${JSON.stringify(ev)}\n`);
      for (const ev of since ? e.events.history(parseLogTime(since)) : []) {
        if (end !== undefined && ev.timeNano / 1e6 >= end) break;
        if (keep(ev)) send(ev);
      }
      if (end !== undefined && end <= Date.now()) {
        res.end();
        return;
      }
      await new Promise<void>((resolve) => {
        const onEvent = (ev: Parameters<typeof send>[0]) => {
          if (keep(ev as never)) send(ev);
        };
        const timer = end !== undefined ? setTimeout(done, end - Date.now()) : undefined;
        function done() {
          clearTimeout(timer);
          e.events.off('event', onEvent);
          resolve();
        }
        e.events.on('event', onEvent);
        req.socket.once('close', done);
      });
      res.end();
    },
  },
  {
    method: 'POST',
    pattern: '/auth',
    handle: async (e, { req, res }) => {
      const body = await readJSON<{ username: string; password: string; serveraddress: string }>(req);
      await e.login(body.username ?? '', body.password ?? '', body.serveraddress ?? '');
      sendJSON(res, 200, { Status: 'Login Succeeded', IdentityToken: '' });
    },
  },
];

/** Parts of the API that come with later work: a clear 501, not a 404. */
export const laterPrefixes = ['/swarm', '/services', '/nodes', '/secrets', '/configs', '/plugins', '/session'];
