// biome-ignore-all lint/suspicious/noExplicitAny: replies of a client built from the proto at run time
// CRI through `berth daemon --cri`, driven by a Node gRPC client built from the same proto (crictl
// is not packaged here): crictl's request sequences as recorded in shared/CRI.md, a kubelet-like pod
// lifecycle, pods reaching each other over the CNI network, failure paths, and what a removed pod
// leaves on the host (nothing).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { WebSocket } from 'ws';
import { berth, ok } from '../testutil/cli.js';
import { daemonFixture, startBerthDaemon } from '../testutil/daemon.js';
import { removeCgroupTree, writePodNetwork } from '../testutil/network.js';
import { criProto } from './index.js';

type Call = (req: object) => Promise<Record<string, any>>;
type Methods =
  | 'Version'
  | 'Status'
  | 'RuntimeConfig'
  | 'RunPodSandbox'
  | 'StopPodSandbox'
  | 'RemovePodSandbox'
  | 'PodSandboxStatus'
  | 'ListPodSandbox'
  | 'CreateContainer'
  | 'StartContainer'
  | 'StopContainer'
  | 'RemoveContainer'
  | 'ListContainers'
  | 'ContainerStatus'
  | 'UpdateContainerResources'
  | 'ExecSync'
  | 'Exec'
  | 'Attach'
  | 'PortForward'
  | 'ContainerStats'
  | 'ListContainerStats'
  | 'PodSandboxStats'
  | 'ListImages'
  | 'ImageStatus'
  | 'PullImage'
  | 'RemoveImage'
  | 'ImageFsInfo';
type Service = Record<Methods, Call>;

function client(sock: string): { runtime: Service; image: Service; raw: { runtime: any }; close(): void } {
  const def = loader.loadSync(criProto, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const make = (Ctor: typeof grpc.Client) => new Ctor(`unix://${sock}`, grpc.credentials.createInsecure()) as any;
  const rt = make(pkg.runtime.v1.RuntimeService);
  const im = make(pkg.runtime.v1.ImageService);
  const wrap = (c: any): Service =>
    new Proxy({} as Service, {
      get: (_t, name: string) => (req: object) =>
        new Promise((resolve, reject) => c[name](req, (err: Error | null, res: Record<string, any>) => (err ? reject(err) : resolve(res)))),
    });
  return {
    runtime: wrap(rt),
    image: wrap(im),
    raw: { runtime: rt },
    close: () => {
      rt.close();
      im.close();
    },
  };
}

// A CNI network of the tests' own, as kubelet's network plugin would write it.
const bridge = `bcri${process.pid % 10000}`;
const subnet = '10.203.7';
let cniDir: string;
let logDir: string;
let cri: ReturnType<typeof client>;

const fx = daemonFixture('cri', {
  daemonArgs: async (f) => {
    cniDir = join(f.work, 'net.d');
    logDir = join(f.work, 'pods');
    await writePodNetwork(cniDir, { name: `cri-test-${process.pid}`, bridge, subnet: `${subnet}.0/24` });
    return ['--cri', `unix://${join(f.work, 'run', 'cri.sock')}`, '--cni-conf-dir', cniDir];
  },
  ready: async (f) => {
    cri = client(join(f.work, 'run', 'cri.sock'));
  },
});

after(async () => {
  cri?.close();
  rmSync(leaseDir(), { recursive: true, force: true });
  removeCgroupTree('/berth-cri-test');
  try {
    execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
  } catch {} // never made
});

let podN = 0;
function podConfig(name = `pod${++podN}`, extra: object = {}) {
  return {
    metadata: { name, uid: `uid-${name}-${process.pid}`, namespace: 'default', attempt: 0 },
    hostname: name,
    log_directory: join(logDir, name),
    linux: {},
    ...extra,
  };
}

function ctrConfig(name: string, image: string, command: string[], extra: object = {}) {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command,
    log_path: `${name}/0.log`,
    linux: { security_context: { namespace_options: { pid: 'CONTAINER' } } },
    ...extra,
  };
}

/** Runs a pod, pulls nothing: the image is pulled once by the tests. */
async function runPod(name?: string, extra: object = {}) {
  const config = podConfig(name, extra);
  await mkdir(config.log_directory, { recursive: true });
  const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config });
  return { id: pod_sandbox_id as string, config };
}

async function startContainer(pod: { id: string; config: object }, config: object): Promise<string> {
  const { container_id } = await cri.runtime.CreateContainer({ pod_sandbox_id: pod.id, config, sandbox_config: pod.config });
  await cri.runtime.StartContainer({ container_id });
  return container_id;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const leaseDir = () => `/var/lib/cni/networks/cri-test-${process.pid}`;
const leases = () => (existsSync(leaseDir()) ? readdirSync(leaseDir()).filter((n) => /^\d/.test(n)) : []);

let imageId: string;

describe('CRI', () => {
  test("crictl's connection checks, version, info and image commands", async () => {
    const v = await cri.runtime.Version({});
    assert.deepEqual([v.version, v.runtime_name, v.runtime_api_version], ['0.1.0', 'berth', 'v1']);
    assert.equal((await cri.runtime.Version({ version: 'v1' })).runtime_api_version, 'v1');
    const fs = await cri.image.ImageFsInfo({});
    assert.match(fs.image_filesystems[0].fs_id.mountpoint, /\/snapshots\/(overlayfs|native)$/);
    const info = await cri.runtime.Status({ verbose: true });
    const cond = Object.fromEntries(info.status.conditions.map((c: { type: string; status: boolean }) => [c.type, c.status]));
    assert.deepEqual(cond, { RuntimeReady: true, NetworkReady: true });
    assert.equal(JSON.parse(info.info.config).cniConfDir, cniDir);
    assert.deepEqual((await cri.runtime.RuntimeConfig({})).linux, { cgroup_driver: 'CGROUPFS' });

    // crictl pull: the raw string; the reply is the image ID
    const pulled = await cri.image.PullImage({ image: { image: fx.image } });
    imageId = pulled.image_ref;
    assert.match(imageId, /^sha256:[a-f0-9]{64}$/);
    const { images } = await cri.image.ListImages({ filter: { image: {} } });
    const img = images.find((i: { id: string }) => i.id === imageId);
    assert.deepEqual(img.repo_tags, [fx.image]);
    assert.equal(img.repo_digests.length, 1);
    assert.match(img.repo_digests[0], new RegExp(`^${fx.image.replace(/:latest$/, '')}@sha256:`));
    // the compressed content, as containerd reports it: manifest + config + layers
    const raw = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${fx.image}`]);
    const manifest = JSON.parse(raw.toString());
    const content = raw.length + manifest.config.size + manifest.layers.reduce((n: number, l: { size: number }) => n + l.size, 0);
    assert.equal(img.size, String(content));
    const explained = JSON.parse(
      ok(await berth(fx.root, ['-n', 'k8s.io', '--format', 'json', 'image', 'size', fx.image]), 'image size').stdout,
    );
    assert.equal(img.size, String(explained.content), "image size's Content is CRI's Image.size");
    assert.equal(img.uid ?? img.username, undefined); // busybox runs as root: no User in its config
    // CRI's images live in k8s.io, not the CLI's default namespace
    assert.match(ok(await berth(fx.root, ['-n', 'k8s.io', 'images']), 'images').stdout, /busybox/);
    assert.doesNotMatch(ok(await berth(fx.root, ['images']), 'images').stdout, /busybox/);

    const st = await cri.image.ImageStatus({ image: { image: fx.image }, verbose: true });
    assert.equal(st.image.id, imageId);
    assert.equal(JSON.parse(st.info.info).imageSpec.rootfs.type, 'layers');
    assert.equal((await cri.image.ImageStatus({ image: { image: imageId.slice(7, 19) } })).image.id, imageId);
    // crictl inspecti of an unknown image: an empty reply, not an error
    assert.deepEqual(await cri.image.ImageStatus({ image: { image: 'no/such:image' } }), {});
    // rmi: by name (every name of the image goes), and again: not an error
    ok(await berth(fx.root, ['-n', 'k8s.io', 'tag', fx.image, 'extra/name:1']), 'tag');
    await cri.image.RemoveImage({ image: { image: fx.image } });
    assert.deepEqual(await cri.image.ImageStatus({ image: { image: 'extra/name:1' } }), {});
    await cri.image.RemoveImage({ image: { image: fx.image } });
    assert.equal((await cri.image.PullImage({ image: { image: fx.image } })).image_ref, imageId);
  });

  test('a pod: two containers over its localhost, ExecSync, stats, a CRI log with a partial line, stop and remove', async () => {
    const pod = await runPod('web');
    const status = await cri.runtime.PodSandboxStatus({ pod_sandbox_id: pod.id, verbose: true });
    assert.equal(status.status.state, 'SANDBOX_READY');
    assert.match(status.status.network.ip, new RegExp(`^${subnet.replace(/\./g, '\\.')}\\.\\d+$`));
    assert.equal(status.status.metadata.name, 'web');
    assert.ok(Number(status.status.created_at) > Date.now() * 1e6 - 60e9);
    assert.ok(JSON.parse(status.info.info).pid > 0);
    assert.deepEqual(
      (await cri.runtime.ListPodSandbox({ filter: {} })).items.map((p: { id: string }) => p.id),
      [pod.id],
    );

    const server = await startContainer(
      pod,
      ctrConfig('server', imageId, ['sh', '-c', 'mkdir -p /www && echo pod-local > /www/index.html && exec httpd -f -p 8080 -h /www']),
    );
    const clientId = await startContainer(
      pod,
      ctrConfig('client', imageId, [
        'sh',
        '-c',
        'until wget -qO- http://127.0.0.1:8080/; do sleep 0.1; done; echo to-stderr >&2; printf partial; exec sleep 1000',
      ]),
    );
    const listed = await cri.runtime.ListContainers({ filter: { state: { state: 'CONTAINER_RUNNING' } } });
    assert.deepEqual(listed.containers.map((c: { id: string }) => c.id).sort(), [server, clientId].sort());
    assert.ok(
      listed.containers.every((c: { pod_sandbox_id: string; image_id: string }) => c.pod_sandbox_id === pod.id && c.image_id === imageId),
    );

    // ExecSync: output, exit code, the pod's host name (UTS shared)
    const exec = await cri.runtime.ExecSync({ container_id: server, cmd: ['cat', '/www/index.html'], timeout: '10' });
    assert.deepEqual([exec.stdout.toString(), exec.exit_code ?? 0], ['pod-local\n', 0]);
    const failed = await cri.runtime.ExecSync({ container_id: server, cmd: ['sh', '-c', 'echo bad >&2; hostname; exit 3'] });
    assert.deepEqual([failed.stdout.toString(), failed.stderr.toString(), failed.exit_code], ['web\n', 'bad\n', 3]);
    await assert.rejects(cri.runtime.ExecSync({ container_id: server, cmd: ['sleep', '5'], timeout: '1' }), {
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    // one IPC namespace and one /dev/shm for the pod
    await cri.runtime.ExecSync({ container_id: server, cmd: ['sh', '-c', 'echo shared > /dev/shm/x'] });
    assert.equal((await cri.runtime.ExecSync({ container_id: clientId, cmd: ['cat', '/dev/shm/x'] })).stdout.toString(), 'shared\n');

    // the log, in CRI's format, where kubelet reads it
    const cs = await cri.runtime.ContainerStatus({ container_id: clientId });
    assert.equal(cs.status.log_path, join(pod.config.log_directory, 'client/0.log'));
    const log = await until('the client log', async () => {
      const text = existsSync(cs.status.log_path) ? readFileSync(cs.status.log_path, 'utf8') : '';
      return text.includes('partial') ? text : undefined;
    });
    const stamp = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,9})?(Z|[+-]\\d\\d:\\d\\d)';
    // each line `<time> <stream> <P|F> <text>`; the two streams' lines may interleave either way
    assert.ok(log.endsWith('\n'));
    const lines = log.slice(0, -1).split('\n');
    const parsed = lines.map((l) => new RegExp(`^${stamp} (stdout|stderr) (P|F) (.*)$`).exec(l));
    assert.ok(parsed.every(Boolean), `a line not in CRI's format: ${JSON.stringify(lines)}`);
    const stream = (name: string) => parsed.filter((m) => m?.[3] === name).map((m) => `${m?.[4]} ${m?.[5]}`);
    assert.deepEqual(stream('stdout'), ['F pod-local', 'P partial']);
    assert.deepEqual(stream('stderr'), ['F to-stderr']);

    // stats: CPU and memory of the container; the pod's with its network
    const stats = (await cri.runtime.ContainerStats({ container_id: server })).stats;
    assert.equal(stats.attributes.id, server);
    assert.ok(Number(stats.memory.working_set_bytes.value) > 0);
    assert.ok(Number(stats.cpu.usage_core_nano_seconds.value) > 0);
    assert.equal((await cri.runtime.ListContainerStats({ filter: { pod_sandbox_id: pod.id } })).stats.length, 2);
    const ps = (await cri.runtime.PodSandboxStats({ pod_sandbox_id: pod.id })).stats;
    assert.equal(ps.linux.network.default_interface.name, 'eth0');
    assert.ok(Number(ps.linux.process.process_count.value) >= 3);
    assert.equal(ps.linux.containers.length, 2);

    // stop: the stop signal, then SIGKILL; stopping twice is not an error
    await cri.runtime.StopContainer({ container_id: clientId, timeout: '1' });
    await cri.runtime.StopContainer({ container_id: clientId, timeout: '1' });
    const stopped = (await cri.runtime.ContainerStatus({ container_id: clientId })).status;
    assert.equal(stopped.state, 'CONTAINER_EXITED');
    assert.ok(Number(stopped.finished_at) >= Number(stopped.started_at));

    await cri.runtime.StopPodSandbox({ pod_sandbox_id: pod.id });
    assert.equal((await cri.runtime.PodSandboxStatus({ pod_sandbox_id: pod.id })).status.state, 'SANDBOX_NOTREADY');
    assert.equal((await cri.runtime.ContainerStatus({ container_id: server })).status.state, 'CONTAINER_EXITED');
    assert.deepEqual(leases(), [], 'the address went back at the stop');
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id });
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id });
    assert.deepEqual((await cri.runtime.ListPodSandbox({})).items ?? [], []);
    assert.deepEqual((await cri.runtime.ListContainers({})).containers ?? [], []);
    // nothing left on the host: mounts, namespace, veth, lease
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(fx.root), 'a mount under the root is left');
    assert.ok(!existsSync(`/run/netns/berth-pod-${pod.id}`), 'the namespace is left');
    assert.equal(execFileSync('ip', ['-o', 'link', 'show', 'master', bridge]).toString().trim(), '', 'a veth is left');
  });

  test('two pods reach each other over the CNI network', async () => {
    const a = await runPod();
    const b = await runPod();
    await startContainer(
      a,
      ctrConfig('web', imageId, ['sh', '-c', 'mkdir /www && echo from-a > /www/index.html && exec httpd -f -p 80 -h /www']),
    );
    const curl = await startContainer(b, ctrConfig('shell', imageId, ['sleep', '1000']));
    const ipA = (await cri.runtime.PodSandboxStatus({ pod_sandbox_id: a.id })).status.network.ip;
    const got = await until('pod a to answer', async () => {
      const r = await cri.runtime.ExecSync({ container_id: curl, cmd: ['wget', '-qO-', `http://${ipA}/`], timeout: '5' });
      return (r.exit_code ?? 0) === 0 ? r.stdout.toString() : undefined;
    });
    assert.equal(got, 'from-a\n');
    for (const p of [a, b]) await cri.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
    assert.deepEqual(leases(), []);
  });

  test('security context, resources, mounts, devices and a host-network pod', async () => {
    const parent = `/berth-cri-test/pod${process.pid}`;
    const pod = await runPod(undefined, { linux: { cgroup_parent: parent } });
    const shared = join(fx.work, 'shared');
    await mkdir(shared, { recursive: true });
    await writeFile(join(shared, 'note'), 'from the host\n');
    const id = await startContainer(
      pod,
      ctrConfig('locked', imageId, ['sleep', '1000'], {
        mounts: [{ container_path: '/data', host_path: shared, readonly: true }],
        devices: [{ container_path: '/dev/xnull', host_path: '/dev/null', permissions: 'rw' }],
        linux: {
          resources: { memory_limit_in_bytes: String(64 << 20), cpu_shares: '512', oom_score_adj: '-997' },
          security_context: {
            namespace_options: { pid: 'CONTAINER' },
            run_as_user: { value: '1000' },
            run_as_group: { value: '1000' },
            readonly_rootfs: true,
            capabilities: { drop_capabilities: ['ALL'] },
            seccomp: { profile_type: 'RuntimeDefault' },
          },
        },
      }),
    );
    const sh = async (cmd: string) => {
      const r = await cri.runtime.ExecSync({ container_id: id, cmd: ['sh', '-c', cmd], timeout: '10' });
      return { out: r.stdout.toString().trim(), code: r.exit_code ?? 0 };
    };
    assert.deepEqual(await sh('id -u; id -g'), { out: '1000\n1000', code: 0 });
    assert.equal((await sh('touch /x')).code, 1, 'the root file system is read-only');
    assert.deepEqual(await sh('cat /data/note'), { out: 'from the host', code: 0 });
    assert.equal((await sh('touch /data/y')).code, 1, 'the mount is read-only');
    assert.deepEqual(await sh('echo hi > /dev/xnull && echo ok'), { out: 'ok', code: 0 });
    assert.match((await sh('grep CapEff /proc/self/status')).out, /CapEff:\s+0+$/);
    assert.match((await sh('grep Seccomp: /proc/self/status')).out, /Seccomp:\s+2/);
    // the pod's cgroup parent, the limits in it, and a change to them
    const memory = `/sys/fs/cgroup/memory${parent}/${id}/memory.limit_in_bytes`;
    if (existsSync(memory)) {
      assert.equal(readFileSync(memory, 'utf8').trim(), String(64 << 20));
      await cri.runtime.UpdateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: String(96 << 20) } });
      assert.equal(readFileSync(memory, 'utf8').trim(), String(96 << 20));
    } else {
      assert.equal(readFileSync(`/sys/fs/cgroup${parent}/${id}/memory.max`, 'utf8').trim(), String(64 << 20));
    }
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id });

    // host network: no namespace of its own, no address from CNI, the host's interfaces
    const config = podConfig(undefined, { linux: { security_context: { namespace_options: { network: 'NODE' } } } });
    const host = (await cri.runtime.RunPodSandbox({ config })).pod_sandbox_id;
    const hst = (await cri.runtime.PodSandboxStatus({ pod_sandbox_id: host })).status;
    assert.deepEqual([hst.state, hst.network.ip, hst.linux.namespaces.options.network], ['SANDBOX_READY', '', 'NODE']);
    const c = await startContainer({ id: host, config }, ctrConfig('on-host', imageId, ['sleep', '1000']));
    const links = (await cri.runtime.ExecSync({ container_id: c, cmd: ['cat', '/proc/net/dev'] })).stdout.toString();
    assert.ok(links.includes(bridge), "the host's bridge is in the container's view");
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: host });
  });

  test('streaming: Exec, Attach and PortForward over WebSocket (v5 and v4 channel protocols)', async () => {
    const pod = await runPod();
    const web = await startContainer(
      pod,
      ctrConfig('web', imageId, ['sh', '-c', 'mkdir /www && echo forwarded > /www/index.html && exec httpd -f -p 8080 -h /www']),
    );
    const echo = await startContainer(
      pod,
      ctrConfig('echo', imageId, ['sh', '-c', 'while read l; do echo "got:$l"; done'], { stdin: true }),
    );

    /** Opens a stream URL and collects what each channel carries until the server closes it. */
    const open = async (url: string, protocol: string) => {
      const ws = new WebSocket(url.replace(/^http/, 'ws'), [protocol]);
      // listening before the open: a server's first messages (port-forward's port frames) can come with it
      const got = new Map<number, Buffer>();
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.on('message', (m: Buffer) => got.set(m[0] as number, Buffer.concat([got.get(m[0] as number) ?? Buffer.alloc(0), m.subarray(1)])));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      return {
        ws,
        closed,
        text: (ch: number) => got.get(ch)?.toString() ?? '',
        raw: (ch: number) => got.get(ch) ?? Buffer.alloc(0),
        send: (ch: number, data: string | Buffer) => ws.send(Buffer.concat([Buffer.of(ch), Buffer.from(data)])),
      };
    };

    // exec with stdin, closed by v5's close message; the Status on the error channel
    const cat = await cri.runtime.Exec({
      container_id: web,
      cmd: ['sh', '-c', 'cat; echo err >&2; exit 3'],
      stdin: true,
      stdout: true,
      stderr: true,
    });
    assert.match(cat.url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[\w-]+$/);
    const s1 = await open(cat.url, 'v5.channel.k8s.io');
    assert.equal(s1.ws.protocol, 'v5.channel.k8s.io');
    s1.send(0, 'through stdin\n');
    s1.ws.send(Buffer.of(255, 0));
    await s1.closed;
    assert.deepEqual([s1.text(1), s1.text(2)], ['through stdin\n', 'err\n']);
    const status = JSON.parse(s1.text(3));
    assert.deepEqual(
      [status.status, status.reason, status.details.causes[0]],
      ['Failure', 'NonZeroExitCode', { reason: 'ExitCode', message: '3' }],
    );
    // a URL is good once
    await assert.rejects(open(cat.url, 'v5.channel.k8s.io'));

    // exec on a terminal (v4): one output, and the size the resize channel gave
    const tty = await cri.runtime.Exec({ container_id: web, cmd: ['sh', '-c', 'sleep 0.5; stty size'], tty: true, stdout: true });
    const s2 = await open(tty.url, 'v4.channel.k8s.io');
    s2.send(4, JSON.stringify({ Width: 91, Height: 27 }));
    await s2.closed;
    assert.equal(s2.text(1).trim(), '27 91');
    assert.deepEqual(JSON.parse(s2.text(3)), { metadata: {}, status: 'Success' });
    await assert.rejects(cri.runtime.Exec({ container_id: web, cmd: ['true'], tty: true, stdout: true, stderr: true }), {
      code: grpc.status.INVALID_ARGUMENT,
    });

    // attach to a container's stdin and stdout
    const at = await cri.runtime.Attach({ container_id: echo, stdin: true, stdout: true, stderr: true });
    const s3 = await open(at.url, 'v5.channel.k8s.io');
    s3.send(0, 'hello\n');
    await until('the echo', async () => (s3.text(1).includes('got:hello') ? true : undefined));
    s3.ws.close();

    // port-forward into the pod's own localhost
    const pf = await cri.runtime.PortForward({ pod_sandbox_id: pod.id, port: [8080] });
    const s4 = await open(`${pf.url}?port=8080`, 'v4.channel.k8s.io');
    await until(`the port frames (errors: ${s4.text(1)})`, async () => (s4.raw(0).length >= 2 ? true : undefined));
    assert.equal(s4.raw(0).readUInt16LE(0), 8080, 'the data channel opens with the port');
    s4.send(0, 'GET / HTTP/1.0\r\n\r\n');
    await s4.closed;
    assert.match(s4.raw(0).subarray(2).toString(), /^HTTP\/1\.[01] 200[\s\S]*\r\n\r\nforwarded\n$/);
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id });
  });

  test('failure paths: unknown image, missing container, a container that exits non-zero', async () => {
    const pod = await runPod();
    await assert.rejects(cri.runtime.CreateContainer({ pod_sandbox_id: pod.id, config: ctrConfig('x', 'no/such:image', ['true']) }), {
      code: grpc.status.NOT_FOUND,
    });
    await assert.rejects(cri.runtime.ContainerStatus({ container_id: 'f'.repeat(64) }), { code: grpc.status.NOT_FOUND });
    await assert.rejects(cri.runtime.PodSandboxStatus({ pod_sandbox_id: 'f'.repeat(64) }), { code: grpc.status.NOT_FOUND });
    // a sandbox ID is not a container's
    await assert.rejects(cri.runtime.ContainerStatus({ container_id: pod.id }), { code: grpc.status.NOT_FOUND });
    const id = await startContainer(pod, ctrConfig('fails', imageId, ['sh', '-c', 'exit 7']));
    const st = await until('the exit', async () => {
      const s = (await cri.runtime.ContainerStatus({ container_id: id })).status;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    assert.deepEqual([st.exit_code, st.reason], [7, 'Error']);
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id });
  });

  test('GetContainerEvents streams created, started, stopped and deleted', async () => {
    const events: { container_id: string; container_event_type: string }[] = [];
    const stream = cri.raw.runtime.GetContainerEvents({}) as NodeJS.EventEmitter & { cancel(): void };
    stream.on('data', (e: { container_id: string; container_event_type: string }) => events.push(e));
    stream.on('error', () => {}); // the cancel below
    await sleep(200);
    const pod = await runPod();
    const id = await startContainer(pod, ctrConfig('brief', imageId, ['true']));
    await until('the exit', async () =>
      (await cri.runtime.ContainerStatus({ container_id: id })).status.state === 'CONTAINER_EXITED' ? true : undefined,
    );
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod.id });
    await sleep(300);
    stream.cancel();
    const mine = events.filter((e) => e.container_id === id).map((e) => e.container_event_type);
    assert.deepEqual(mine, ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    assert.ok(
      events.some((e) => e.container_id === pod.id && e.container_event_type === 'CONTAINER_DELETED_EVENT'),
      "the pod's own",
    );
  });

  test('SIGKILL of the daemon during RunPodSandbox is repaired by the next start', async () => {
    const run = join(fx.work, 'run');
    const outcomes: string[] = [];
    const podNamespaces = () => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('berth-pod-')) : []);
    const before = new Set(podNamespaces()); // other roots' pods are not this test's
    // kill points spread over a measured RunPodSandbox
    const started = performance.now();
    const measured = await runPod();
    const ms = performance.now() - started;
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id: measured.id });
    for (const delay of [0.2, 0.4, 0.6, 0.8].map((f) => Math.round(ms * f))) {
      const config = podConfig();
      const pending = cri.runtime.RunPodSandbox({ config }).catch(() => {});
      await sleep(delay);
      await fx.daemon.stop('SIGKILL');
      cri.close();
      fx.daemon = await startBerthDaemon(fx.root, run, ['--cri', `unix://${join(run, 'cri.sock')}`, '--cni-conf-dir', cniDir]);
      cri = client(join(run, 'cri.sock'));
      // gRPC may retry a call the killed daemon never took up on the new one: let it settle
      await pending;
      const pods = (await cri.runtime.ListPodSandbox({})).items ?? [];
      // a pod is either whole or gone: nothing half made is left
      for (const p of pods) assert.equal(p.state, 'SANDBOX_READY', `pod ${p.metadata.name} at ${delay} ms`);
      const ids = new Set(pods.map((p: { id: string }) => p.id));
      for (const ns of podNamespaces().filter((n) => !before.has(n))) {
        assert.ok(ids.has(ns.slice('berth-pod-'.length)), `namespace ${ns} left at ${delay} ms`);
      }
      assert.equal(leases().length, pods.length, `leases at ${delay} ms`);
      for (const p of pods) await cri.runtime.RemovePodSandbox({ pod_sandbox_id: p.id });
      outcomes.push(/took apart 1 pod sandbox/.test(fx.daemon.log()) ? 'repaired' : pods.length ? 'finished' : 'not begun');
    }
    assert.ok(outcomes.includes('repaired'), `no kill landed inside RunPodSandbox: ${outcomes.join(', ')}`);
  });
});
