import { createWriteStream, existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { decompressArchive, readTar } from '../archive/index.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError, withContext } from '../errdefs/index.js';
import {
  type ArchiveEntry,
  type ArchiveFile,
  applyChange,
  archiveFiles,
  commitImage,
  convertImage,
  type LoadOpts,
  tarFiles,
  unpackUnderLease,
} from '../images/index.js';
import { type ContainerConfig, type Descriptor, formatReference, type Index, parsePlatform, parseReference } from '../oci/index.js';
import { type Berth, loadImages, lookupImage } from '../services/index.js';
import { readFileChunks, writeFileAtomic } from '../sys/index.js';
import { example, type Globals, withBerth } from './context.js';

import { collect, humanBytes } from './output.js';
import { ProgressView } from './progress.js';

/** import/export (root filesystem tarballs), save/load (image archives), image import/export --oci (OCI layouts). */
export function registerArchive(program: Command): void {
  const image = program.commands.find((c) => c.name() === 'image') as Command;
  const container = program.commands.find((c) => c.name() === 'container') as Command;

  const importCmd = (c: Command) =>
    c
      .description(
        'Make a one-layer image from a root filesystem tarball (a file, an http(s) URL, or - for stdin; gzip, zstd or plain); with --oci, load an OCI image layout directory',
      )
      .argument('<file|URL|-|DIR[:REF]>')
      .argument('[repository[:tag]]')
      .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, …)', collect)
      .option('-m, --message <text>', 'the history comment (default: "Imported from SOURCE")')
      .option('--oci', 'the source is an OCI image layout directory (skopeo, umoci, buildah); REF picks a manifest by its ref name')
      .action(
        async (source: string, repo: string | undefined, flags: { change?: string[]; message?: string; oci?: boolean }, cmd: Command) =>
          withBerth(cmd, async (b, g) => {
            if (flags.oci) {
              const [dir, ref] = splitLayoutRef(source);
              await finishLoad(b, g, layoutEntries(dir), {
                ...(ref ? { refName: ref } : {}),
                ...(repo ? { name: formatReference(parseReference(repo)) } : {}),
              });
              return;
            }
            let config: ContainerConfig = {};
            for (const change of flags.change ?? []) config = applyChange(config, change);
            const name = repo ? formatReference(parseReference(repo)) : undefined;
            const ns = b.namespace(g.namespace);
            const r = await commitImage(ns, undefined, decompressArchive(await openSource(source)), {
              ...(name ? { name } : {}),
              config,
              comment: flags.message ?? `Imported from ${source}`,
            });
            // Unpacked at once, as docker's import applies the layer: a tarball that is not a root
            // filesystem (not a tar, hostile paths) is refused now, not at the first run.
            try {
              await unpackUnderLease(ns, b.snapshotter(g.namespace), r.manifest);
            } catch (err) {
              if (r.image) ns.images.delete(r.image.name);
              if (b.settings.gcAfterRemove) await b.gc();
              throw withContext(err, `import "${source}"`);
            }
            process.stdout.write(`${r.imageId}\n`);
          }),
      );
  example(
    importCmd(program.command('import')),
    'berth import rootfs.tar.gz mybox:1',
    'tar -C rootfs -c . | berth import -c \'CMD ["sh"]\' - mybox:1',
  );
  example(
    importCmd(image.command('import')),
    'berth image import https://example.com/rootfs.tar.gz mybox:1',
    'berth image import --oci ./layout:latest localhost:5000/app:1',
  );

  const saveCmd = (c: Command) =>
    c
      .description(
        'Write images to a tar archive that docker load, skopeo and berth load read (to stdout unless -o); --format docker (an OCI layout plus manifest.json, as docker 25+ writes; the default) or oci (the layout alone)',
      )
      .argument('<image...>')
      .option('-o, --output <file>', 'write to a file instead of standard output')
      .option('--platform <os/arch[/variant]>', "the platform of a multi-platform image to save (default: this host's)")
      .action(async (refs: string[], flags: { output?: string; platform?: string }, cmd: Command) =>
        withBerth(
          cmd,
          async (b, g) => {
            // `--format` is the global flag (commander gives it every --format): docker, oci, or its default.
            const format = (cmd.optsWithGlobals() as { format?: string }).format === 'oci' ? 'oci' : 'docker';
            const ns = b.namespace(g.namespace);
            const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
            const images = [];
            for (const ref of refs) images.push(await lookupImage(ns, ref, platform));
            await writeOutput(flags.output, tarFiles(await archiveFiles(ns, images, { format })));
          },
          { ownFormats: ['docker', 'oci'] },
        ),
      );
  example(
    saveCmd(program.command('save')),
    'berth save -o images.tar busybox alpine',
    'berth save --format oci busybox | gzip > busybox.oci.tar.gz',
  );
  example(saveCmd(image.command('save')), 'berth image save -o busybox.tar busybox');

  const loadCmd = (c: Command) =>
    c
      .description(
        'Load images from a tar archive (docker save, skopeo docker-archive or oci-archive, berth save; gzip or zstd too) or an OCI layout directory',
      )
      .option('-i, --input <file|dir>', 'read from a file (or an OCI layout directory) instead of standard input')
      .option('-q, --quiet', 'no progress')
      .action(async (flags: { input?: string; quiet?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const view = new ProgressView({ quiet: flags.quiet ?? false });
          // An OCI layout directory loads as its archive would.
          const isDir =
            flags.input !== undefined &&
            (await stat(flags.input).then(
              (st) => st.isDirectory(),
              () => false,
            ));
          const entries = isDir
            ? layoutEntries(flags.input as string)
            : readTar(decompressArchive(flags.input ? await openSource(flags.input) : process.stdin));
          await finishLoad(b, g, entries, {
            onEvent: (e) => {
              view.update({ ref: e.path, offset: e.size, total: e.size }, e.path);
              view.finish(e.path, `Loaded ${humanBytes(e.size)}`);
            },
          });
        }),
      );
  example(loadCmd(program.command('load')), 'berth load -i images.tar', 'gunzip -c images.tar.gz | berth load');
  example(loadCmd(image.command('load')), 'berth image load -i busybox.tar');

  example(
    image
      .command('convert')
      .description('Write an image again with its layers recompressed or its media types changed (the image ID stays)')
      .argument('<source>')
      .argument('<target>')
      .option('--zstd', 'compress every layer with zstd')
      .option('--gzip', 'compress every layer with gzip')
      .option('--uncompressed', 'store every layer uncompressed')
      .option('--oci', 'OCI media types')
      .option('--docker', 'Docker media types')
      .option('--platform <os/arch[/variant]>', "the platform of a multi-platform image (default: this host's)")
      .action(
        async (
          src: string,
          dst: string,
          flags: { zstd?: boolean; gzip?: boolean; uncompressed?: boolean; oci?: boolean; docker?: boolean; platform?: string },
          cmd: Command,
        ) =>
          withBerth(cmd, async (b, g) => {
            const compressions = (['zstd', 'gzip', 'uncompressed'] as const).filter((k) => flags[k]);
            if (compressions.length > 1) throw new InvalidArgumentError('convert: choose one of --zstd, --gzip, --uncompressed');
            if (flags.oci && flags.docker) throw new InvalidArgumentError('convert: choose one of --oci, --docker');
            const ns = b.namespace(g.namespace);
            const { resolved } = await lookupImage(ns, src, flags.platform ? parsePlatform(flags.platform) : undefined);
            const c = compressions[0];
            const r = await convertImage(ns, resolved, formatReference(parseReference(dst)), {
              ...(c ? { compression: c === 'uncompressed' ? 'none' : c } : {}),
              ...(flags.oci ? { format: 'oci' } : flags.docker ? { format: 'docker' } : {}),
            });
            process.stdout.write(`${r.manifest.digest}\n`);
          }),
      ),
    'berth image convert --zstd --oci busybox busybox:zstd',
  );

  example(
    image
      .command('export')
      .description('Write images into an OCI image layout directory (shared with skopeo, umoci and buildah; added to one that exists)')
      .requiredOption('--oci <dir>', 'the layout directory')
      .argument('<image...>')
      .option('--platform <os/arch[/variant]>', "the platform of a multi-platform image (default: this host's)")
      .action(async (refs: string[], flags: { oci: string; platform?: string }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
          const images = [];
          for (const ref of refs) images.push(await lookupImage(ns, ref, platform));
          await writeLayout(flags.oci, await archiveFiles(ns, images, { format: 'oci' }));
        }),
      ),
    'berth image export --oci ./layout busybox',
  );

  const exportCmd = (c: Command) =>
    c
      .description("Write a container's filesystem as a tar archive (to stdout unless -o)")
      .argument('<container>')
      .option('-o, --output <file>', 'write to a file instead of standard output')
      .action(async (ref: string, flags: { output?: string }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          if (!flags.output && process.stdout.isTTY) {
            throw new FailedPreconditionError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
          }
          await b.containers(g.namespace).exportFs(ref, (tar) => writeOutput(flags.output, tar));
        }),
      );
  example(exportCmd(program.command('export')), 'berth export -o web.tar web');
  example(exportCmd(container.command('export')), 'berth container export web | tar -t');
}

/** Unpacks what was loaded and says what, as docker does. */
async function finishLoad(b: Berth, g: Globals, loaded: AsyncIterable<ArchiveEntry>, opts: LoadOpts = {}): Promise<void> {
  const { messages } = await loadImages(b, g.namespace, loaded, opts);
  for (const m of messages) process.stdout.write(`${m}\n`);
}

/** `DIR:REF` as skopeo's `oci:DIR:REF`: the part after the last colon is a ref name when DIR exists without it. */
function splitLayoutRef(arg: string): [string, string | undefined] {
  const i = arg.lastIndexOf(':');
  if (i > 0 && !arg.slice(i + 1).includes('/') && existsSync(join(arg.slice(0, i), 'oci-layout')))
    return [arg.slice(0, i), arg.slice(i + 1)];
  return [arg, undefined];
}

/** The files of an OCI image layout directory, as archive members (only what a layout holds is read). */
async function* layoutEntries(dir: string): AsyncGenerator<ArchiveEntry> {
  if (!existsSync(join(dir, 'oci-layout'))) throw new InvalidArgumentError(`"${dir}" is not an OCI image layout (no oci-layout file)`);
  const file = async function* (rel: string): AsyncGenerator<ArchiveEntry> {
    const st = await lstat(join(dir, rel));
    if (!st.isFile()) throw new InvalidArgumentError(`layout "${dir}": ${rel} is not a regular file`);
    yield { header: { name: rel, type: 'file', size: st.size, linkname: '' }, body: () => readFileChunks(join(dir, rel)) };
  };
  yield* file('oci-layout');
  yield* file('index.json');
  for (const alg of await readdir(join(dir, 'blobs')).catch(() => [] as string[])) {
    for (const hex of await readdir(join(dir, 'blobs', alg))) yield* file(`blobs/${alg}/${hex}`);
  }
}

/** Writes files into an OCI layout directory; an index.json already there keeps its other entries. */
async function writeLayout(dir: string, files: ArchiveFile[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of files) {
    const path = join(dir, f.path);
    if (f.path === 'index.json') continue;
    if (f.path.startsWith('blobs/') && existsSync(path)) continue; // content-addressed: already right
    await mkdir(dirname(path), { recursive: true });
    await writeOutput(path, f.body());
  }
  const mine = JSON.parse(await streamText((files.find((f) => f.path === 'index.json') as ArchiveFile).body())) as Index;
  let index: Index = mine;
  const old = await readFile(join(dir, 'index.json'), 'utf8').catch(() => undefined);
  if (old !== undefined) {
    const prev = JSON.parse(old) as Index;
    const key = (d: Descriptor) =>
      d.annotations?.['org.opencontainers.image.ref.name'] ?? d.annotations?.['io.containerd.image.name'] ?? d.digest;
    const replaced = new Set(mine.manifests.map(key));
    index = { ...prev, manifests: [...prev.manifests.filter((d) => !replaced.has(key(d))), ...mine.manifests] };
  }
  await writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index));
}

async function streamText(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString('utf8');
}

/** Writes a stream to a file (aside, then renamed: a failure leaves no half file) or to stdout, never to a terminal. */
async function writeOutput(output: string | undefined, data: AsyncIterable<Uint8Array>): Promise<void> {
  if (!output) {
    if (process.stdout.isTTY) throw new FailedPreconditionError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    await pipeline(Readable.from(data), process.stdout);
    return;
  }
  const tmp = `${output}.partial-${process.pid}`;
  try {
    await pipeline(Readable.from(data), createWriteStream(tmp));
    await rename(tmp, output);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The bytes of a file, an http(s) URL, or standard input (`-`). */
async function openSource(source: string): Promise<AsyncIterable<Uint8Array>> {
  if (source === '-') return process.stdin;
  if (/^https?:\/\//.test(source)) {
    let res: Response;
    try {
      res = await fetch(source);
    } catch (err) {
      throw new UnavailableError(`import: ${source}: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 404) throw new NotFoundError(`import: ${source}: 404 Not Found`);
    if (!res.ok || !res.body) throw new UnavailableError(`import: ${source}: ${res.status} ${res.statusText}`);
    return Readable.fromWeb(res.body as ReadableStream<Uint8Array>);
  }
  const st = await stat(source).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new NotFoundError(`import "${source}": no such file`) : err;
  });
  if (!st.isFile()) throw new InvalidArgumentError(`import "${source}": not a regular file`);
  return readFileChunks(source);
}
