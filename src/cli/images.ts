import { resolve } from 'node:path';
import type { Command } from 'commander';
import { hasCode, NotFoundError } from '../errdefs/index.js';
import { contentSize, unpackUnderLease } from '../images/index.js';
import { type Digest, digestHex } from '../oci/index.js';
import {
  filterImages,
  findImages,
  type ImageRow,
  imageCreated,
  imageHistory,
  imageIdOf,
  imageRows,
  inspectImage,
  removeImages,
  repoOf,
  resolvedRow,
  tagImage,
} from '../services/index.js';
import { mountAll, type SnapshotInfo, unmount } from '../snapshots/index.js';
import { example, withBerth } from './context.js';
import { humanDuration, humanSize, printJSON, printListing } from './output.js';

/** The key of the view that `image mount` makes for a directory. */
const mountKey = (target: string) => `mount:${target}`;

export function registerImages(program: Command): void {
  const listAction = async (opts: { quiet?: boolean; digests?: boolean; trunc: boolean; filter: string[]; all?: boolean }, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      const list = filterImages(await imageRows(b.namespace(g.namespace), b.snapshotter(g.namespace)), opts.filter).sort(
        (a, z) => imageCreated(z) - imageCreated(a),
      );
      const id = (r: ImageRow) =>
        imageIdOf(r) ? (!opts.trunc ? (imageIdOf(r) as string) : digestHex(imageIdOf(r) as Digest).slice(0, 12)) : '<missing>';
      if (opts.quiet) {
        for (const x of new Set(list.map(id))) process.stdout.write(`${x}\n`);
        return;
      }
      const now = Date.now();
      const headers = ['REPOSITORY', 'TAG', ...(opts.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'CONTENT SIZE', 'UNPACKED SIZE'];
      printListing(
        g.format,
        list,
        headers,
        (r) => [
          repoOf(r),
          r.ref?.tag ?? '<none>',
          ...(opts.digests ? [r.image.target.digest] : []),
          id(r),
          imageCreated(r) ? `${humanDuration(now - imageCreated(r))} ago` : 'N/A',
          r.resolved ? humanSize(contentSize(r.resolved)) : '-',
          r.unpackedSize !== undefined ? humanSize(r.unpackedSize) : '-',
        ],
        (r) => ({
          name: r.image.name,
          repository: repoOf(r),
          tag: r.ref?.tag ?? null,
          digest: r.image.target.digest,
          id: imageIdOf(r) ?? null,
          created: r.resolved?.config.value.created ?? null,
          contentSize: r.resolved ? contentSize(r.resolved) : null,
          unpackedSize: r.unpackedSize ?? null,
          ...(r.error ? { error: r.error } : {}),
        }),
      );
    });

  const listOptions = (c: Command) =>
    c
      .option('-a, --all', 'show all images (there are no intermediate images to hide)')
      .option('-q, --quiet', 'print only image IDs')
      .option('--digests', 'show digests')
      .option('--no-trunc', 'do not truncate image IDs')
      .option(
        '-f, --filter <key=value>',
        'reference=, before=, since=, dangling=, label= (repeatable)',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      );

  example(
    listOptions(program.command('images').description('List images: content size (containerd, crictl) and unpacked size (docker)')).action(
      listAction,
    ),
    'berth images',
    'berth images --filter reference=busybox --digests --format json',
  );

  const image = program.command('image').description('Manage images');
  example(image, 'berth image ls', 'berth image inspect busybox');
  example(listOptions(image.command('ls').alias('list').description('List images')).action(listAction), 'berth image ls -q');

  example(
    image
      .command('inspect')
      .description('Show images as JSON, with docker-compatible fields')
      .argument('<images...>')
      .action(async (args: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const all = await imageRows(b.namespace(g.namespace), b.snapshotter(g.namespace));
          printJSON(args.map((a) => inspectImage(findImages(all, a)[0] as ImageRow, all)));
        }),
      ),
    'berth image inspect busybox',
  );

  // `image history`, and `history` at the top as docker has it
  for (const [parent, prefix] of [
    [image, 'berth image'],
    [program, 'berth'],
  ] as const)
    example(
      parent
        .command('history')
        .description("Show an image's history: the step that made each layer")
        .argument('<image>')
        .option('--no-trunc', 'do not truncate output')
        .option('-q, --quiet', 'print only image IDs')
        .action(async (arg: string, opts: { trunc: boolean; quiet?: boolean }, cmd: Command) =>
          withBerth(cmd, async (b, g) => {
            const r = resolvedRow(findImages(await imageRows(b.namespace(g.namespace)), arg)[0] as ImageRow, arg);
            const entries = imageHistory(r);
            const now = Date.now();
            const top = imageIdOf(r) as string;
            if (opts.quiet) {
              process.stdout.write(`${opts.trunc ? digestHex(top as Digest).slice(0, 12) : top}\n`);
              return;
            }
            printListing(
              g.format,
              entries,
              ['IMAGE', 'CREATED', 'CREATED BY', 'CONTENT SIZE', 'COMMENT'],
              (e) => [
                e === entries[0] ? (opts.trunc ? digestHex(top as Digest).slice(0, 12) : top) : '<missing>',
                e.created ? `${humanDuration(now - Date.parse(e.created))} ago` : 'N/A',
                opts.trunc && e.createdBy.length > 45 ? `${e.createdBy.slice(0, 44)}…` : e.createdBy,
                humanSize(e.size),
                e.comment,
              ],
              (e) => e,
            );
          }),
        ),
      `${prefix} history busybox`,
    );

  example(
    image
      .command('unpack')
      .description("Unpack an image's layers into snapshots (pull does this unless --no-unpack)")
      .argument('<image>')
      .action(async (arg: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const sn = b.snapshotter(g.namespace);
          const r = resolvedRow(findImages(await imageRows(ns), arg)[0] as ImageRow, arg);
          process.stdout.write(`unpacking ${r.image.name} (${r.image.target.digest})...`);
          const res = await unpackUnderLease(ns, sn, r.resolved.manifestDesc);
          process.stdout.write(`done: ${res.applied} of ${res.chainIDs.length} layers applied (${sn.driver})\n`);
        }),
      ),
    'berth image unpack busybox',
    'berth --snapshotter native image unpack busybox',
  );

  example(
    image
      .command('mount')
      .description("Mount an image's filesystem read-only on a directory (unpacking it first when needed)")
      .argument('<image>')
      .argument('<dir>')
      .action(async (arg: string, dir: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const sn = b.snapshotter(g.namespace);
          const r = resolvedRow(findImages(await imageRows(ns), arg)[0] as ImageRow, arg);
          const target = resolve(dir);
          const key = mountKey(target);
          const done = await unpackUnderLease(ns, sn, r.resolved.manifestDesc);
          const top = done.chainIDs.at(-1);
          const mounts = await sn.view(key, {
            ...(top ? { parent: top } : {}),
            labels: { 'berth.io/mount-target': target, 'berth.io/image': r.image.name },
          });
          try {
            await mountAll(mounts, target);
          } catch (err) {
            await sn.remove(key);
            throw err;
          }
          process.stdout.write(`${target}\n`);
        }),
      ),
    'berth image mount busybox /mnt/busybox',
  );

  example(
    image
      .command('unmount')
      .alias('umount')
      .description('Unmount a directory that image mount mounted, and drop its view')
      .argument('<dir>')
      .action(async (dir: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const target = resolve(dir);
          const sn = b.snapshotter(g.namespace);
          const key = mountKey(target);
          let info: SnapshotInfo;
          try {
            info = await sn.stat(key);
          } catch (err) {
            if (hasCode(err, 'NOT_FOUND'))
              throw new NotFoundError(`unmount "${target}": not mounted by berth image mount (namespace "${g.namespace}")`);
            throw err;
          }
          if (info.kind === 'view') await unmount(target);
          await sn.remove(key);
          process.stdout.write(`${target}\n`);
        }),
      ),
    'berth image unmount /mnt/busybox',
  );

  const tagAction = async (src: string, dst: string, _o: unknown, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      await tagImage(b.namespace(g.namespace), src, dst);
    });
  example(
    program.command('tag').description('Give an image another name').argument('<source>').argument('<target>').action(tagAction),
    'berth tag busybox localhost:5000/busybox:1',
  );
  example(
    image.command('tag').description('Give an image another name').argument('<source>').argument('<target>').action(tagAction),
    'berth image tag busybox mybox:1',
  );

  const rmAction = async (args: string[], opts: { force?: boolean }, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      for (const e of await removeImages(b, g.namespace, args, opts)) {
        process.stdout.write('Untagged' in e ? `Untagged: ${e.Untagged}\n` : `Deleted: ${e.Deleted}\n`);
      }
    });
  const rmOptions = (c: Command) => c.argument('<images...>').option('-f, --force', 'remove every name of an image ID');
  example(
    rmOptions(program.command('rmi').description('Remove images (names); content goes with garbage collection')).action(rmAction),
    'berth rmi busybox',
  );
  example(rmOptions(image.command('rm').alias('remove').description('Remove images (names)')).action(rmAction), 'berth image rm busybox');
}
