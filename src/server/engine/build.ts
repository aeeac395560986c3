import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { build, classicText, contextDockerfile, extractArchive, freshDir, shortId } from '../../build/index.js';
import { hasCode, InvalidArgumentError, NotImplementedError } from '../../errdefs/index.js';
import { pull } from '../../images/index.js';
import { familiarString, formatReference, parsePlatform, parseReference } from '../../oci/index.js';
import { buildHost, lookupImage, pruneBuildCache } from '../../services/index.js';
import { boolValue, MessageStream, sendJSON } from './http.js';
import type { Route } from './router.js';

/** A JSON map parameter (`buildargs`, `labels`); null values (the CLI's unset args) are dropped. */
function jsonMap(query: URLSearchParams, key: string): Record<string, string> {
  const raw = query.get(key);
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new InvalidArgumentError(`${key}: not a JSON object`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError(`${key}: not a JSON object`);
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) as Record<string, string>;
}

export const buildRoutes: Route[] = [
  {
    // The classic builder's protocol (version=1): the context is the body (a tar, plain or compressed).
    method: 'POST',
    pattern: '/build',
    handle: async (e, { req, res, query }) => {
      if (query.get('version') === '2')
        throw new NotImplementedError('BuildKit (version=2) is not implemented by berth: use the classic protocol (DOCKER_BUILDKIT=0)');
      if (query.get('remote')) throw new NotImplementedError('remote build contexts are not implemented by berth');
      const tags = query.getAll('t').map((t) => formatReference(parseReference(t)));
      const quiet = boolValue(query, 'q');
      const platformText = query.get('platform');
      const platform = platformText ? parsePlatform(platformText) : undefined;
      const buildArgs = jsonMap(query, 'buildargs');
      const labels = jsonMap(query, 'labels');
      const dir = await freshDir(join(e.berth.root, 'build', 'tmp'), 'ctx');
      let stream: MessageStream | undefined;
      try {
        await extractArchive(req, dir);
        const dockerfile = contextDockerfile(dir, query.get('dockerfile') || 'Dockerfile');
        stream = new MessageStream(res);
        const out = stream;
        const session = e.sessionForConfig(req.headers['x-registry-config'] as string | undefined);
        const host = buildHost(e.berth, e.namespace, async (ref, o) => {
          if (!o.pull) {
            try {
              return await lookupImage(e.containers.ns, ref, o.platform);
            } catch (err) {
              if (!hasCode(err, 'NOT_FOUND')) throw err;
            }
          }
          const reference = parseReference(ref);
          if (!quiet) out.send({ stream: `Pulling ${familiarString(reference)}\n` });
          await pull(e.containers.ns, reference, {
            session,
            ...(o.platform ? { platform: o.platform } : {}),
            unpack: e.berth.snapshotter(e.namespace),
            discardUnpackedLayers: !e.berth.settings.keepCompressedLayers,
          });
          return lookupImage(e.containers.ns, formatReference(reference), o.platform);
        });
        const result = await build(host, {
          contextDir: dir,
          dockerfile,
          tags,
          buildArgs,
          labels,
          ...(query.get('target') ? { target: query.get('target') as string } : {}),
          ...(platform ? { platform } : {}),
          noCache: boolValue(query, 'nocache'),
          pull: boolValue(query, 'pull'),
          ...(query.get('networkmode') && query.get('networkmode') !== 'default' ? { network: query.get('networkmode') as string } : {}),
          onEvent: (ev) => {
            if (quiet && ev.type !== 'warning') return;
            const text = classicText(ev);
            if (text !== undefined) out.send({ stream: text.toString() });
          },
        });
        out.send({ aux: { ID: result.imageId } });
        if (quiet) out.send({ stream: `${result.imageId}\n` });
        else {
          out.send({ stream: `Successfully built ${shortId(result.imageId)}\n` });
          for (const t of tags) out.send({ stream: `Successfully tagged ${familiarString(parseReference(t))}\n` });
        }
        for (const t of tags) e.events.image('tag', result.imageId, t);
        await session.close();
      } catch (err) {
        // Before the stream started, a plain error reply (bad parameters, an unreadable context).
        if (!stream) throw err;
        stream.error(err);
        req.resume();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      stream?.end();
    },
  },
  {
    method: 'POST',
    pattern: '/build/prune',
    handle: async (e, { res, query }) => {
      const r = await pruneBuildCache(e.berth, e.namespace, { all: boolValue(query, 'all') });
      sendJSON(res, 200, { CachesDeleted: r.removed, SpaceReclaimed: r.reclaimed });
    },
  },
];
