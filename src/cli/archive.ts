import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { decompressAny } from '../archive/index.js';
import { readFileChunks } from '../content/index.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError, withContext } from '../errdefs/index.js';
import { applyChange, commitImage, unpackUnderLease } from '../images/index.js';
import type { ContainerConfig } from '../oci/index.js';
import { formatReference, parseReference } from '../oci/index.js';
import { example, withBerth } from './context.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `import` (a root filesystem tarball becomes an image) and `export` (a container's filesystem as a tarball). */
export function registerArchive(program: Command): void {
  const image = program.commands.find((c) => c.name() === 'image') as Command;
  const container = program.commands.find((c) => c.name() === 'container') as Command;

  const importCmd = (c: Command) =>
    c
      .description('Make a one-layer image from a root filesystem tarball (a file, an http(s) URL, or - for stdin; gzip, zstd or plain)')
      .argument('<file|URL|->')
      .argument('[repository[:tag]]')
      .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, …)', collect)
      .option('-m, --message <text>', 'the history comment (default: "Imported from SOURCE")')
      .action(async (source: string, repo: string | undefined, flags: { change?: string[]; message?: string }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          let config: ContainerConfig = {};
          for (const change of flags.change ?? []) config = applyChange(config, change);
          const name = repo ? formatReference(parseReference(repo)) : undefined;
          const ns = b.namespace(g.namespace);
          const r = await commitImage(ns, undefined, decompressAny(await openSource(source)), {
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
  example(importCmd(image.command('import')), 'berth image import https://example.com/rootfs.tar.gz mybox:1');

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
          await b.containers(g.namespace).exportFs(ref, async (tar) => {
            if (!flags.output) {
              await pipeline(Readable.from(tar), process.stdout);
              return;
            }
            // Written aside and renamed: a failed export leaves no half file under the name asked for.
            const tmp = `${flags.output}.partial-${process.pid}`;
            try {
              await pipeline(Readable.from(tar), createWriteStream(tmp));
              await rename(tmp, flags.output);
            } finally {
              await rm(tmp, { force: true });
            }
          });
        }),
      );
  example(exportCmd(program.command('export')), 'berth export -o web.tar web');
  example(exportCmd(container.command('export')), 'berth container export web | tar -t');
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
