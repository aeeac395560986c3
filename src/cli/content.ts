import { createWriteStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { type Info, verifyBlob, writeBlob } from '../content/index.js';
import { DataLossError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { parseDigest } from '../oci/index.js';
import { readFileChunks } from '../sys/index.js';
import { example, withBerth } from './context.js';
import { formatLabels, humanBytes, humanDuration, humanSize, parseKeyValues, printJSON, printListing } from './output.js';
import { ProgressView } from './progress.js';

const infoJSON = (i: Info) => ({ digest: i.digest, size: i.size, createdAt: i.createdAt, updatedAt: i.updatedAt, labels: i.labels });

export function registerContent(program: Command): void {
  const content = program.command('content').description('Manage the content store (blobs) of a namespace');
  example(content, 'berth content add layer.tar.gz', 'berth -n k8s.io content ls');

  example(
    content
      .command('ls')
      .alias('list')
      .description('List the blobs the namespace references')
      .option('-q, --quiet', 'print only digests')
      .action(async (opts: { quiet?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const infos: Info[] = [];
          for await (const i of b.namespace(g.namespace).content.list()) infos.push(i);
          if (opts.quiet) {
            for (const i of infos) process.stdout.write(`${i.digest}\n`);
            return;
          }
          const now = Date.now();
          printListing(
            g.format,
            infos,
            ['DIGEST', 'SIZE', 'AGE', 'LABELS'],
            (i) => [i.digest, humanSize(i.size), humanDuration(now - i.createdAt.getTime()), formatLabels(i.labels)],
            infoJSON,
          );
        }),
      ),
    'berth content ls --format json',
  );

  example(
    content
      .command('add')
      .alias('ingest')
      .description('Add a blob from a file or standard input; prints its digest. An interrupted add of the same file resumes.')
      .argument('[file]', 'the file to add; "-" or nothing reads standard input')
      .option('--ref <ref>', 'the ingest reference (default: derived from the file)')
      .option('--expected-digest <digest>', 'refuse the blob unless it has this digest')
      .option('--expected-size <bytes>', 'refuse the blob unless it has this size')
      .option('-l, --label <key=value>', 'a label for the blob (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
      .option('-q, --quiet', 'no progress')
      .action(
        async (
          file: string | undefined,
          opts: { ref?: string; expectedDigest?: string; expectedSize?: string; label?: string[]; quiet?: boolean },
          cmd: Command,
        ) =>
          withBerth(cmd, async (b, g) => {
            const store = b.namespace(g.namespace).content;
            const fromStdin = file === undefined || file === '-';
            let ref = opts.ref;
            let source: AsyncIterable<Uint8Array> | undefined;
            let openAt: ((offset: number) => AsyncIterable<Uint8Array>) | undefined;
            let total = 0;
            if (fromStdin) {
              ref ??= `stdin-${process.pid}-${Date.now()}`;
              source = process.stdin;
            } else {
              const path = await realpath(file).catch((err: NodeJS.ErrnoException) => {
                throw err.code === 'ENOENT' ? new NotFoundError(`add "${file}": no such file`) : err;
              });
              const st = await stat(path);
              if (!st.isFile()) throw new InvalidArgumentError(`add "${file}": not a regular file`);
              total = st.size;
              // The same file, unchanged, gets the same ref: a killed add resumes where it stopped.
              ref ??= `add:${path}:${st.size}:${Math.trunc(st.mtimeMs)}`;
              openAt = (start) => readFileChunks(path, { start });
            }
            let expected: { digest: ReturnType<typeof parseDigest>; size: number } | undefined;
            if (opts.expectedDigest) {
              const size = opts.expectedSize !== undefined ? Number(opts.expectedSize) : total;
              if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`invalid --expected-size "${opts.expectedSize}"`);
              expected = { digest: parseDigest(opts.expectedDigest), size };
            }
            const view = new ProgressView({ quiet: opts.quiet ?? false });
            const label = fromStdin ? 'stdin' : (file as string);
            const res = await writeBlob(store, ref, source, {
              ...(expected ? { expected } : {}),
              ...(openAt ? { openAt } : {}),
              labels: parseKeyValues(opts.label ?? []),
              onProgress: (e) => view.update({ ...e, total: e.total || total }, label),
            });
            view.finish(ref, res.created ? `Done ${humanBytes(res.size)}` : 'Already exists');
            process.stdout.write(`${res.digest}\n`);
          }),
      ),
    'berth content add ./layer.tar.gz',
    'cat blob.bin | berth content add --expected-digest sha256:... -',
  );

  example(
    content
      .command('get')
      .alias('cat')
      .description('Write a blob to standard output or a file')
      .argument('<digest>')
      .option('-o, --output <file>', 'write to a file instead of standard output')
      .action(async (digest: string, opts: { output?: string }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          await using r = await b.namespace(g.namespace).content.reader({ digest: parseDigest(digest) });
          await pipeline(r.read(), opts.output ? createWriteStream(opts.output) : process.stdout);
        }),
      ),
    'berth content get sha256:... -o blob.bin',
  );

  example(
    content
      .command('info')
      .description('Show what is known of a blob, as JSON')
      .argument('<digest>')
      .action(async (digest: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          printJSON(infoJSON(await b.namespace(g.namespace).content.info(parseDigest(digest))));
        }),
      ),
    'berth content info sha256:...',
  );

  example(
    content
      .command('rm')
      .alias('remove')
      .alias('del')
      .description('Remove blobs from the namespace; the bytes go when no namespace references them')
      .argument('<digests...>')
      .action(async (digests: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const store = b.namespace(g.namespace).content;
          for (const d of digests) {
            await store.delete(parseDigest(d));
            process.stdout.write(`${d}\n`);
          }
        }),
      ),
    'berth content rm sha256:...',
  );

  example(
    content
      .command('label')
      .description('Set labels on a blob (key= removes a label)')
      .argument('<digest>')
      .argument('<labels...>', 'key=value labels')
      .action(async (digest: string, labels: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const info = await b.namespace(g.namespace).content.update(parseDigest(digest), parseKeyValues(labels));
          process.stdout.write(`${formatLabels(info.labels)}\n`);
        }),
      ),
    'berth content label sha256:... keep=true',
  );

  example(
    content
      .command('verify')
      .description('Re-hash blobs (all of the namespace, or those named) and report the damaged ones')
      .argument('[digests...]')
      .action(async (digests: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const store = b.namespace(g.namespace).content;
          const infos: Info[] = [];
          if (digests.length > 0) for (const d of digests) infos.push(await store.info(parseDigest(d)));
          else for await (const i of store.list()) infos.push(i);
          const results = [];
          for (const i of infos) results.push(await verifyBlob(store, i));
          const bad = results.filter((r) => !r.ok);
          if (g.format === 'json') printJSON(results);
          else {
            for (const r of bad) process.stdout.write(`${r.digest}: ${r.problem}\n`);
            process.stdout.write(`${results.length} blobs checked, ${bad.length} damaged\n`);
          }
          if (bad.length > 0) throw new DataLossError(`verify: ${bad.length} of ${results.length} blobs damaged`);
        }),
      ),
    'berth content verify',
  );

  example(
    content
      .command('active')
      .description('List ingests in progress or interrupted (resumable)')
      .action(async (_o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const list = [];
          for await (const s of b.namespace(g.namespace).content.listStatuses()) list.push(s);
          printListing(
            g.format,
            list,
            ['REF', 'SIZE', 'TOTAL', 'STARTED'],
            (s) => [
              s.ref,
              humanSize(s.offset),
              s.total ? humanSize(s.total) : '-',
              `${humanDuration(Date.now() - s.startedAt.getTime())} ago`,
            ],
            (s) => s,
          );
        }),
      ),
    'berth content active',
  );
}
