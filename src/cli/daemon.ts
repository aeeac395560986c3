import type { Command } from 'commander';
import { InvalidArgumentError } from '../errdefs/index.js';
import { defaultCriSocket, defaultHost, startDaemon } from '../server/index.js';
import { example, globalsOf, sessionOpts } from './context.js';
import { collect } from './output.js';
import { berthVersion } from './version.js';

interface DaemonFlags {
  host?: string[];
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  pidfile?: string;
  insecureRegistry?: string[];
  cri?: string | boolean;
  engineApi?: boolean;
  cniConfDir?: string;
}

export function registerDaemon(program: Command): void {
  example(
    program
      .command('daemon')
      .description(
        'Serve the Docker Engine API (docker, docker-compose, dockerode, docker-py) and, with --cri, CRI (kubelet, crictl), in the foreground; logs to stderr',
      )
      .option('-H, --host <address>', `unix:///path or tcp://host:port, repeatable (default: ${defaultHost})`, collect)
      .option('--tlsverify', 'tcp: require client certificates signed by --tlscacert')
      .option('--tlscacert <file>', 'tcp: the CA that signs client certificates')
      .option('--tlscert <file>', "tcp: the daemon's certificate")
      .option('--tlskey <file>', "tcp: the daemon's key")
      .option('-p, --pidfile <file>', "the pid file (default: berth.pid in the root's runtime directory)")
      .option('--insecure-registry <host>', 'a registry to reach over plain HTTP or unverified TLS, repeatable', collect)
      .option('--cri [address]', `serve CRI (kubelet, crictl) on a unix socket, in the k8s.io namespace (default: ${defaultCriSocket})`)
      .option('--no-engine-api', 'do not serve the Engine API (with --cri: a CRI runtime only)')
      .option('--cni-conf-dir <dir>', "where pods' CNI network config is read (default: /etc/cni/net.d)")
      .action(async (flags: DaemonFlags, cmd: Command) => {
        const g = globalsOf(cmd);
        if ((flags.tlscert === undefined) !== (flags.tlskey === undefined))
          throw new InvalidArgumentError('--tlscert and --tlskey go together');
        if (flags.tlsverify && !flags.tlscacert) throw new InvalidArgumentError('--tlsverify needs --tlscacert');
        const session = sessionOpts();
        if (flags.insecureRegistry?.length)
          session.hosts = { ...session.hosts, insecure: [...(session.hosts?.insecure ?? []), ...flags.insecureRegistry] };
        const daemon = await startDaemon({
          root: g.root,
          namespace: g.namespace,
          ...(g.snapshotter ? { snapshotter: g.snapshotter } : {}),
          ...(flags.host ? { hosts: flags.host } : {}),
          ...(flags.tlscert && flags.tlskey
            ? {
                tls: {
                  cert: flags.tlscert,
                  key: flags.tlskey,
                  ...(flags.tlscacert ? { ca: flags.tlscacert } : {}),
                  verify: flags.tlsverify ?? false,
                },
              }
            : {}),
          ...(flags.pidfile ? { pidFile: flags.pidfile } : {}),
          ...(flags.cri ? { cri: flags.cri === true ? defaultCriSocket : flags.cri } : {}),
          engineApi: flags.engineApi ?? true,
          ...(flags.cniConfDir ? { cniConfDir: flags.cniConfDir } : {}),
          session,
          version: berthVersion,
        });
        process.stderr.write(
          `berth daemon ${berthVersion}: root ${g.root}, namespace ${g.namespace}, listening on ${[...daemon.addresses, ...(daemon.criSocket ? [`${daemon.criSocket} (CRI, namespace k8s.io)`] : [])].join(', ')}\n`,
        );
        await new Promise<void>((resolve) => {
          const stop = (sig: NodeJS.Signals) => {
            process.stderr.write(`berth daemon: ${sig}: stopping (containers keep running)\n`);
            void daemon.close().then(resolve);
          };
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
        });
        // What clients still hold (a hijacked attach, a follow) ends with the process, not the containers.
        process.exit(0);
      }),
    'berth daemon',
    'DOCKER_HOST=unix:///run/berth/berth.sock docker run --rm busybox echo hi',
    'berth daemon -H unix:///tmp/berth.sock -H tcp://0.0.0.0:2376 --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem',
    'berth daemon --cri unix:///run/berth/cri.sock   # kubelet --container-runtime-endpoint unix:///run/berth/cri.sock',
  );
}
