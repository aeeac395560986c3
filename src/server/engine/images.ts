import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressArchive, readTar } from '../../archive/index.js';
import { FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError, NotImplementedError } from '../../errdefs/index.js';
import { archiveFiles, doneStatus, pull, push, shortLayerId, type TransferEvent, tarFiles } from '../../images/index.js';
import {
  familiarName,
  familiarString,
  formatReference,
  isDigest,
  isLayer,
  parsePlatform,
  parseReference,
  type Reference,
} from '../../oci/index.js';
import {
  filterImages,
  findImages,
  imageHistory,
  imageRows,
  inspectImage,
  loadImages,
  lookupImage,
  pruneImages,
  removeImages,
  resolvedRow,
  tagImage,
} from '../../services/index.js';
import type { Engine } from './engine.js';
import { boolValue, filterList, MessageStream, sendEmpty, sendJSON } from './http.js';
import type { Route } from './router.js';
import { imageItems } from './views.js';

/** Pull and push progress as docker's JSON messages: one `id` per layer (its short digest). */
function transferMessages(stream: MessageStream, verb: 'pull' | 'push'): (e: TransferEvent) => void {
  const started = new Set<string>();
  return (e) => {
    if (e.type === 'resolved' || !isLayer(e.desc.mediaType)) return;
    const id = shortLayerId(e.desc.digest);
    if (!started.has(id)) {
      started.add(id);
      stream.send({ status: verb === 'pull' ? 'Pulling fs layer' : 'Preparing', progressDetail: {}, id });
    }
    if (e.type === 'progress') {
      stream.send({
        status: verb === 'pull' ? 'Downloading' : 'Pushing',
        progressDetail: { current: e.offset, total: e.total },
        id,
      });
    } else if (e.type === 'waiting') stream.send({ status: 'Waiting', progressDetail: {}, id });
    else if (e.type === 'retrying') stream.send({ status: `Retrying (${e.error})`, progressDetail: {}, id });
    else if (e.type === 'done') stream.send({ status: doneStatus(verb, e.status), progressDetail: {}, id });
  };
}

/** The reference of `POST /images/create`: `fromImage` and `tag` (which carries a digest too). */
function pullReference(fromImage: string, tag: string | null): Reference {
  const base = parseReference(fromImage);
  if (!tag) return base.tag === undefined && base.digest === undefined ? { ...base, tag: 'latest' } : base;
  return isDigest(tag) ? { ...base, tag: undefined, digest: tag } : { ...base, tag, digest: undefined };
}

export const imageRoutes: Route[] = [
  {
    method: 'GET',
    pattern: '/images/json',
    handle: async (e, { res, query }) => {
      const filters = filterList(query);
      const items = await imageItems(e, (rows) => filterImages(rows, filters));
      sendJSON(
        res,
        200,
        items.map(({ Name: _n, ...i }) => i),
      );
    },
  },
  {
    method: 'POST',
    pattern: '/images/create',
    handle: async (e, { req, res, query }) => {
      const fromImage = query.get('fromImage');
      if (query.get('fromSrc')) throw new NotImplementedError('import through the daemon is not implemented yet: use berth import');
      if (!fromImage) throw new InvalidArgumentError('fromImage is required');
      const reference = pullReference(fromImage, query.get('tag'));
      const platform = query.get('platform');
      const session = e.session(reference.domain, req.headers['x-registry-auth'] as string | undefined);
      const stream = new MessageStream(res);
      const tag = reference.tag ?? reference.digest;
      stream.send({ status: `Pulling from ${familiarName(reference)}`, id: tag });
      try {
        const r = await pull(e.containers.ns, reference, {
          session,
          ...(platform ? { platform: parsePlatform(platform) } : {}),
          unpack: e.berth.snapshotter(e.namespace),
          discardUnpackedLayers: !e.berth.settings.keepCompressedLayers,
          onEvent: transferMessages(stream, 'pull'),
        });
        stream.send({ status: `Digest: ${r.image.target.digest}` });
        stream.send({
          status: `Status: ${r.downloaded > 0 ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarString(reference)}`,
        });
        e.events.image('pull', formatReference(reference));
      } catch (err) {
        stream.error(err);
      } finally {
        await session.close();
      }
      stream.end();
    },
  },
  {
    method: 'GET',
    pattern: '/images/get',
    handle: async (e, { res, query }) => {
      const names = query.getAll('names').flatMap((n) => n.split(','));
      if (names.length === 0) throw new InvalidArgumentError('names: at least one image is required');
      await saveImages(e, names, res);
    },
  },
  {
    method: 'POST',
    pattern: '/images/load',
    handle: async (e, { req, res, query }) => {
      const quiet = boolValue(query, 'quiet');
      const stream = new MessageStream(res);
      try {
        const { messages } = await loadImages(e.berth, e.namespace, readTar(decompressArchive(req)));
        for (const m of messages) stream.send({ stream: `${m}\n` });
        if (!quiet) e.events.image('load', '');
      } catch (err) {
        stream.error(err);
        req.resume();
      }
      stream.end();
    },
  },
  {
    method: 'POST',
    pattern: '/images/prune',
    handle: async (e, { res, query }) => {
      const filters = filterList(query);
      const all = filters.some((f) => f === 'dangling=false');
      const r = await pruneImages(e.berth, e.namespace, { all, filters: filters.filter((f) => !f.startsWith('dangling=')) });
      const before = e.berth.settings.gcAfterRemove ? await e.berth.gc() : undefined;
      sendJSON(res, 200, {
        ImagesDeleted: [...r.untagged.map((u) => ({ Untagged: u })), ...r.deleted.map((d) => ({ Deleted: d }))],
        SpaceReclaimed: before?.reclaimed ?? 0,
      });
    },
  },
  {
    method: 'GET',
    pattern: '/images/search',
    handle: async () => {
      throw new NotImplementedError('search is not implemented by berth: registries other than Docker Hub have no search API');
    },
  },
  {
    method: 'GET',
    pattern: '/images/{name*}/json',
    handle: async (e, { res, params }) => {
      const all = await imageRows(e.containers.ns, e.berth.snapshotter(e.namespace));
      const r = findImages(all, params.name as string)[0];
      const doc = inspectImage(r as NonNullable<typeof r>, all);
      sendJSON(res, 200, { ...doc, Parent: '', Comment: '', GraphDriver: { Name: e.berth.snapshotterName, Data: null } });
    },
  },
  {
    method: 'GET',
    pattern: '/images/{name*}/history',
    handle: async (e, { res, params }) => {
      const name = params.name as string;
      const r = resolvedRow(findImages(await imageRows(e.containers.ns), name)[0] as never, name);
      const top = r.resolved.config.digest;
      sendJSON(
        res,
        200,
        imageHistory(r).map((h, i) => ({
          Id: i === 0 ? top : '<missing>',
          Created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0,
          CreatedBy: h.createdBy,
          Tags: i === 0 && r.ref?.tag !== undefined ? [formatReference(r.ref)] : null,
          Size: h.size,
          Comment: h.comment,
        })),
      );
    },
  },
  {
    method: 'POST',
    pattern: '/images/{name*}/tag',
    handle: async (e, { res, params, query }) => {
      const repo = query.get('repo');
      if (!repo) throw new InvalidArgumentError('repo is required');
      const tag = query.get('tag');
      const dst = tag ? `${repo}:${tag}` : repo;
      await tagImage(e.containers.ns, params.name as string, dst);
      e.events.image('tag', formatReference(parseReference(dst)));
      sendEmpty(res, 201);
    },
  },
  {
    method: 'POST',
    pattern: '/images/{name*}/push',
    handle: async (e, { req, res, params, query }) => {
      const name = params.name as string;
      const tag = query.get('tag');
      const base = parseReference(name);
      const ns = e.containers.ns;
      const repo = formatReference({ ...base, tag: undefined, digest: undefined });
      const targets = tag || base.tag ? [formatReference({ ...base, tag: tag || base.tag, digest: undefined })] : repoTags(e, repo);
      for (const t of targets) {
        try {
          ns.images.get(t);
        } catch (err) {
          if (hasCode(err, 'NOT_FOUND')) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarName(base)}`);
          throw err;
        }
      }
      if (targets.length === 0) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarName(base)}`);
      const session = e.session(base.domain, req.headers['x-registry-auth'] as string | undefined);
      const stream = new MessageStream(res);
      stream.send({ status: `The push refers to repository [${base.domain}/${base.path}]` });
      try {
        for (const t of targets) {
          const r = await push(ns, t, undefined, { session, onEvent: transferMessages(stream, 'push') });
          const shown = r.reference.tag ?? r.desc.digest;
          stream.send({ status: `${shown}: digest: ${r.desc.digest} size: ${r.desc.size}` });
          stream.send({ progressDetail: {}, aux: { Tag: shown, Digest: r.desc.digest, Size: r.desc.size } });
          e.events.image('push', t);
        }
      } catch (err) {
        stream.error(err);
      } finally {
        await session.close();
      }
      stream.end();
    },
  },
  {
    method: 'GET',
    pattern: '/images/{name*}/get',
    handle: async (e, { res, params }) => saveImages(e, [params.name as string], res),
  },
  {
    method: 'DELETE',
    pattern: '/images/{name*}',
    handle: async (e, { res, params, query }) => {
      const name = params.name as string;
      const force = boolValue(query, 'force');
      const all = await imageRows(e.containers.ns);
      const matched = findImages(all, name);
      const ids = new Set(matched.map((r) => r.resolved?.config.digest));
      const users = e.containers.ns.containers.list().filter((c) => ids.has(c.imageId as never));
      const wholeImage = matched.length > 0 && all.filter((r) => ids.has(r.resolved?.config.digest)).length === matched.length;
      if (users.length && wholeImage && !force) {
        const c = users[0] as (typeof users)[0];
        throw new FailedPreconditionError(
          `conflict: unable to remove repository reference "${name}" (must force) - container ${c.id.slice(0, 12)} is using its referenced image ${[...ids][0]?.slice(7, 19)}`,
        );
      }
      const removed = await removeImages(e.berth, e.namespace, [name], { force });
      for (const r of removed) e.events.image('Untagged' in r ? 'untag' : 'delete', 'Untagged' in r ? r.Untagged : r.Deleted);
      sendJSON(res, 200, removed);
    },
  },
];

/** The names of a repository's tags in the namespace (`push` without a tag pushes them all). */
function repoTags(e: Engine, repo: string): string[] {
  return e.containers.ns.images
    .list()
    .map((i) => i.name)
    .filter((n) => n.startsWith(`${repo}:`));
}

async function saveImages(e: Engine, names: string[], res: import('node:http').ServerResponse): Promise<void> {
  const images = [];
  for (const n of names) images.push(await lookupImage(e.containers.ns, n));
  const files = await archiveFiles(e.containers.ns, images, { format: 'docker' });
  res.writeHead(200, { 'Content-Type': 'application/x-tar' });
  await pipeline(Readable.from(tarFiles(files)), res);
}
