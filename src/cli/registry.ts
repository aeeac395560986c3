import type { Command } from 'commander';
import { hasCode, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { doneStatus, pull, push, shortLayerId, type TransferEvent } from '../images/index.js';
import {
  familiarString,
  formatPlatform,
  formatReference,
  isLayer,
  type Platform,
  parsePlatform,
  parseReference,
  type Reference,
} from '../oci/index.js';
import { CredentialStore, Repository, Session } from '../remotes/index.js';
import { type Berth, lookupImage } from '../services/index.js';
import { example, type Globals, sessionFor, sessionOpts, withBerth } from './context.js';
import { ProgressView } from './progress.js';

export interface RegistryFlags {
  plainHttp?: boolean;
  hostsDir?: string;
}

function registryOptions(cmd: Command): Command {
  return cmd
    .option('--plain-http', 'talk plain HTTP to the registry (loopback registries always are)')
    .option('--hosts-dir <dir>', "containerd's certs.d directory for hosts.toml (default: /etc/berth/certs.d, /etc/containerd/certs.d)");
}

/** Renders pull and push events as docker does: a line per layer, by short digest. */
function transferView(quiet: boolean, verb: 'pull' | 'push'): (e: TransferEvent) => void {
  const view = new ProgressView({ quiet });
  return (e) => {
    if (e.type === 'resolved' || !isLayer(e.desc.mediaType)) return;
    const id = shortLayerId(e.desc.digest);
    if (e.type === 'progress') view.update({ ref: id, offset: e.offset, total: e.total }, id);
    else if (e.type === 'waiting') view.update({ ref: id, offset: 0, total: e.desc.size }, `${id} (another pull has it)`);
    else if (e.type === 'retrying') view.update({ ref: id, offset: 0, total: e.desc.size }, `${id} (retrying: ${e.error})`);
    else if (e.type === 'done') {
      view.update({ ref: id, offset: e.desc.size, total: e.desc.size }, id);
      view.finish(id, doneStatus(verb, e.status));
    }
  };
}

/** Pulls (and unpacks) an image with docker's progress: status lines on `out`, layer bars on stderr. */
export async function pullImage(
  b: Berth,
  g: Globals,
  reference: Reference,
  opts: RegistryFlags & {
    platform?: string;
    allPlatforms?: boolean;
    quiet?: boolean;
    unpack?: boolean;
    /** Drop the compressed layer blobs once unpacked; the root's setting (keepCompressedLayers) when absent. */
    discardUnpackedLayers?: boolean;
    concurrency?: number;
    out: NodeJS.WriteStream;
  },
): Promise<void> {
  const out = opts.out;
  const session = sessionFor(opts);
  try {
    if (!opts.quiet)
      out.write(
        `${reference.tag ?? reference.digest}: Pulling from ${familiarString({ ...reference, tag: undefined, digest: undefined })}\n`,
      );
    const r = await pull(b.namespace(g.namespace), reference, {
      session,
      concurrency: opts.concurrency ?? 3,
      ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
      ...(opts.allPlatforms ? { allPlatforms: true } : {}),
      ...(opts.unpack !== false && !opts.allPlatforms ? { unpack: b.snapshotter(g.namespace) } : {}),
      discardUnpackedLayers: opts.discardUnpackedLayers ?? !b.settings.keepCompressedLayers,
      onEvent: transferView(opts.quiet ?? false, 'pull'),
    });
    if (!opts.quiet) {
      out.write(`Digest: ${r.image.target.digest}\n`);
      out.write(`Status: ${r.downloaded > 0 ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarString(reference)}\n`);
    }
  } finally {
    await session.close();
  }
}

/** Finds the image, pulling it when the policy says so (docker's "Unable to find image locally"). */
export async function imageFor(b: Berth, g: Globals, arg: string, policy: string, opts: { platform?: Platform } = {}) {
  const ns = b.namespace(g.namespace);
  if (policy !== 'always') {
    try {
      return await lookupImage(ns, arg, opts.platform);
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND') || policy === 'never') throw err;
    }
    process.stderr.write(`Unable to find image '${arg}' locally\n`);
  }
  const reference = parseReference(arg);
  await pullImage(b, g, reference, { out: process.stderr, ...(opts.platform ? { platform: formatPlatform(opts.platform) } : {}) });
  return lookupImage(ns, formatReference(reference), opts.platform);
}

export function registerRegistry(program: Command): void {
  example(
    registryOptions(
      program
        .command('pull')
        .description('Pull an image from a registry into the namespace')
        .argument('<reference>', 'NAME[:TAG|@DIGEST]')
        .option('--platform <os/arch[/variant]>', "the platform to pull from a multi-platform image (default: this host's)")
        .option('-a, --all-platforms', 'pull every platform of a multi-platform image')
        .option('-q, --quiet', 'print only the image reference')
        .option('--no-unpack', 'only fetch the content; do not unpack the layers into snapshots')
        .option(
          '--discard-unpacked-layers',
          "drop the compressed layer blobs once unpacked (the root's default: system config keepCompressedLayers)",
        )
        .option('--no-discard-unpacked-layers', 'keep the compressed layer blobs whatever the root says')
        .option('--max-concurrent-downloads <n>', 'blobs downloaded at once', '3'),
    ).action(
      async (
        ref: string,
        opts: RegistryFlags & {
          platform?: string;
          allPlatforms?: boolean;
          quiet?: boolean;
          unpack: boolean;
          discardUnpackedLayers?: boolean;
          maxConcurrentDownloads: string;
        },
        cmd: Command,
      ) =>
        withBerth(cmd, async (b, g) => {
          const reference = parseReference(ref);
          const concurrency = Number(opts.maxConcurrentDownloads);
          if (!Number.isInteger(concurrency) || concurrency < 1)
            throw new InvalidArgumentError(`invalid --max-concurrent-downloads "${opts.maxConcurrentDownloads}"`);
          await pullImage(b, g, reference, { ...opts, concurrency, out: process.stdout });
          process.stdout.write(`${formatReference(reference)}\n`);
        }),
    ),
    'berth pull busybox',
    'berth pull --platform linux/arm64 localhost:5000/app:1.0',
  );

  example(
    registryOptions(
      program
        .command('push')
        .description('Push an image of the namespace to a registry')
        .argument('<reference>', 'the image to push, NAME[:TAG]')
        .argument('[destination]', 'push under another name (default: the image name)')
        .option('--platform <os/arch[/variant]>', 'push only this platform of a multi-platform image')
        .option('-q, --quiet', 'print only the pushed digest'),
    ).action(async (ref: string, dest: string | undefined, opts: RegistryFlags & { platform?: string; quiet?: boolean }, cmd: Command) =>
      withBerth(cmd, async (b, g) => {
        const source = formatReference(parseReference(ref));
        const ns = b.namespace(g.namespace);
        try {
          ns.images.get(source);
        } catch (err) {
          if (hasCode(err, 'NOT_FOUND')) throw new NotFoundError(`An image does not exist locally with the tag: ${ref}`, { cause: err });
          throw err;
        }
        const target = parseReference(dest ?? source);
        const session = sessionFor(opts);
        try {
          if (!opts.quiet) process.stdout.write(`The push refers to repository [${target.domain}/${target.path}]\n`);
          const r = await push(ns, source, target, {
            session,
            ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
            onEvent: transferView(opts.quiet ?? false, 'push'),
          });
          process.stdout.write(
            opts.quiet ? `${r.desc.digest}\n` : `${r.reference.tag ?? r.desc.digest}: digest: ${r.desc.digest} size: ${r.desc.size}\n`,
          );
        } finally {
          await session.close();
        }
      }),
    ),
    'berth push localhost:5000/app:1.0',
    'berth push busybox localhost:5000/mirror/busybox:latest',
  );

  example(
    registryOptions(
      program
        .command('login')
        .description("Log in to a registry; credentials go to docker's config.json (or its credential helper)")
        .argument('[server]', 'registry host', 'docker.io')
        .option('-u, --username <name>')
        .option('-p, --password <password>')
        .option('--password-stdin', 'read the password from standard input'),
    ).action(async (server: string, opts: RegistryFlags & { username?: string; password?: string; passwordStdin?: boolean }) => {
      const domain = registryDomain(server);
      if (!opts.username) throw new InvalidArgumentError('login: --username is required');
      let password = opts.password;
      if (opts.passwordStdin) {
        if (password) throw new InvalidArgumentError('login: --password and --password-stdin are mutually exclusive');
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        password = Buffer.concat(chunks)
          .toString('utf8')
          .replace(/\r?\n$/, '');
      }
      if (!password) throw new InvalidArgumentError('login: a password is required (--password or --password-stdin)');
      const creds = { username: opts.username, secret: password };
      const session = new Session({ ...sessionOpts(opts), credentialsFile: null, auth: { [domain]: creds } });
      try {
        await session.ping(domain);
      } finally {
        await session.close();
      }
      const store = new CredentialStore();
      await store.store(domain, creds);
      process.stdout.write('Login Succeeded\n');
    }),
    'berth login -u alice localhost:5000',
    'echo "$TOKEN" | berth login -u alice --password-stdin registry.example:5000',
  );

  example(
    program
      .command('logout')
      .description('Remove the stored credentials of a registry')
      .argument('[server]', 'registry host', 'docker.io')
      .action(async (server: string) => {
        const domain = registryDomain(server);
        await new CredentialStore().erase(domain);
        process.stdout.write(`Removing login credentials for ${domain}\n`);
      }),
    'berth logout localhost:5000',
  );

  const manifest = program.command('manifest').description('Inspect manifests in a registry');
  example(manifest, 'berth manifest inspect busybox');
  example(
    registryOptions(
      manifest.command('inspect').description('Print the manifest or index a reference names in its registry, raw').argument('<reference>'),
    ).action(async (ref: string, opts: RegistryFlags) => {
      const reference = parseReference(ref);
      const session = sessionFor(opts);
      try {
        const repo = new Repository(session, reference);
        const desc = await repo.resolve(reference);
        const raw = await repo.fetchManifest(desc);
        process.stdout.write(raw);
        if (raw[raw.length - 1] !== 0x0a) process.stdout.write('\n');
      } finally {
        await session.close();
      }
    }),
    'berth manifest inspect localhost:5000/app:1.0',
  );
}

/** The registry a `login` argument names: a host, or a URL as docker accepts it. */
function registryDomain(server: string): string {
  let s = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (s === 'index.docker.io' || s === 'registry-1.docker.io') s = 'docker.io';
  if (!s) throw new InvalidArgumentError(`invalid registry "${server}"`);
  return s;
}
