import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { decompressArchive } from '../../archive/index.js';
import type { CgroupStats, Container, ContainerUpdate, PathStat } from '../../containers/index.js';
import { FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError } from '../../errdefs/index.js';
import { formatReference, parseReference } from '../../oci/index.js';
import { inspectContainer, lookupImage, matchFilter, pruneContainers } from '../../services/index.js';
import { attachUpgrade, serveAttach, serveLogs } from './container-streams.js';
import type { Engine } from './engine.js';
import { boolValue, filterList, intValue, readJSON, sendEmpty, sendJSON } from './http.js';
import type { Route } from './router.js';
import { multiplexedStream, rawStream, streamResponse } from './streams.js';
import { type CreateBody, containerItem, createOpts, restartPolicy } from './views.js';

const find = (e: Engine, ref: string): Container => e.containers.ns.containers.find(ref);

export const containerRoutes: Route[] = [
  {
    method: 'GET',
    pattern: '/containers/json',
    handle: async (e, { res, query }) => {
      const filters = filterList(query);
      let list = await e.containers.list();
      if (!boolValue(query, 'all') && !filters.some((f) => f.startsWith('status=')))
        list = list.filter((c) => c.state.status === 'running');
      list = list.filter((c) => filters.every((f) => matchFilter(c, f)));
      const limit = intValue(query, 'limit', -1) as number;
      if (limit > 0) list = list.slice(0, limit);
      const size = boolValue(query, 'size');
      const out = [];
      for (const c of list) {
        const item = containerItem(c);
        if (size) {
          const u = await e.containers.usage(c);
          Object.assign(item, { SizeRw: u.writable, SizeRootFs: u.writable });
        }
        out.push(item);
      }
      sendJSON(res, 200, out);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/create',
    handle: async (e, { req, res, query }) => {
      const body = await readJSON<CreateBody>(req);
      if (!body.Image || typeof body.Image !== 'string') throw new InvalidArgumentError('config: an image is required');
      const opts = createOpts(body, query.get('name'));
      let image: Awaited<ReturnType<typeof lookupImage>>;
      try {
        image = await lookupImage(e.containers.ns, body.Image);
      } catch (err) {
        if (hasCode(err, 'NOT_FOUND')) throw new NotFoundError(`No such image: ${displayName(body.Image)}`, { cause: err });
        throw err;
      }
      const c = await e.containers.create(image, opts);
      e.events.container('create', c);
      sendJSON(res, 201, { Id: c.id, Warnings: [] });
    },
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/json',
    handle: async (e, { res, params, query }) => {
      const c = await e.containers.get(params.id as string);
      const doc = inspectContainer(e.berth, e.containers, c);
      // The log reads back through /logs as json-file's does (docker-py's run reads output only
      // for json-file and journald); on disk it is CRI's format.
      doc.HostConfig = {
        RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
        ...(doc.HostConfig as object),
        LogConfig: { Type: 'json-file', Config: {} },
      };
      if (boolValue(query, 'size')) {
        const u = await e.containers.usage(c);
        Object.assign(doc, { SizeRw: u.writable, SizeRootFs: u.writable });
      }
      sendJSON(res, 200, doc);
    },
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/top',
    handle: async (e, { res, params, query }) => {
      const psArgs = query.get('ps_args');
      const text = await e.containers.top(params.id as string, psArgs ? psArgs.split(/\s+/).filter(Boolean) : undefined);
      const lines = text.trimEnd().split('\n');
      const titles = (lines[0] ?? '').trim().split(/\s+/);
      const processes = lines.slice(1).map((l) => {
        const parts = l.trim().split(/\s+/);
        return [...parts.slice(0, titles.length - 1), parts.slice(titles.length - 1).join(' ')];
      });
      sendJSON(res, 200, { Titles: titles, Processes: processes });
    },
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/stats',
    handle: async (e, { req, res, params, query }) => {
      const c = await e.containers.get(params.id as string);
      const stream = query.get('stream') === null || boolValue(query, 'stream');
      const oneShot = boolValue(query, 'one-shot');
      const reading = async () => {
        const cur = await e.containers.get(c.id).catch(() => undefined);
        return cur?.state.status === 'running' ? e.containers.stats(cur) : undefined;
      };
      const doc = (now: CgroupStats | undefined, pre: CgroupStats | undefined) => ({
        ...(now ?? zeroStats()),
        preread: pre?.read ?? '0001-01-01T00:00:00Z',
        precpu_stats: pre?.cpu_stats ?? zeroStats().cpu_stats,
        name: `/${c.name}`,
        id: c.id,
      });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      let pre = await reading();
      if (!stream) {
        if (!oneShot && pre) await sleep(1000);
        const now = oneShot ? pre : await reading();
        res.end(`${JSON.stringify(doc(now, oneShot ? undefined : pre))}\n`);
        return;
      }
      let gone = false;
      req.socket.once('close', () => {
        gone = true;
      });
      while (!gone) {
        await sleep(1000);
        const now = await reading();
        res.write(`${JSON.stringify(doc(now, pre))}\n`);
        if (!now) break;
        pre = now;
      }
      res.end();
    },
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/logs',
    handle: serveLogs,
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/export',
    handle: async (e, { res, params }) => {
      const id = find(e, params.id as string).id;
      await e.containers.exportFs(id, async (tar) => {
        res.writeHead(200, { 'Content-Type': 'application/x-tar' });
        await pipeline(Readable.from(tar), res);
      });
    },
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/changes',
    handle: async (e, { res, params }) => {
      const changes = await e.containers.changes(params.id as string);
      sendJSON(res, 200, changes.length ? changes : null);
    },
  },
  {
    method: 'HEAD',
    pattern: '/containers/{id}/archive',
    handle: async (e, { res, params, query }) => {
      const stat = await e.containers.statPath(params.id as string, archivePath(query));
      res.writeHead(200, { 'X-Docker-Container-Path-Stat': pathStatHeader(stat), 'Content-Type': 'application/json' });
      res.end();
    },
  },
  {
    method: 'GET',
    pattern: '/containers/{id}/archive',
    handle: async (e, { req, res, params, query }) => {
      const ac = new AbortController();
      req.socket.once('close', () => ac.abort());
      await e.containers.readPath(
        params.id as string,
        archivePath(query),
        async (stat, tar) => {
          res.writeHead(200, { 'X-Docker-Container-Path-Stat': pathStatHeader(stat), 'Content-Type': 'application/x-tar' });
          await pipeline(Readable.from(tar), res);
        },
        { signal: ac.signal },
      );
    },
  },
  {
    method: 'PUT',
    pattern: '/containers/{id}/archive',
    handle: async (e, { req, res, params, query }) => {
      await e.containers.writePath(params.id as string, archivePath(query), decompressArchive(req));
      sendEmpty(res, 200);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/start',
    handle: async (e, { res, params }) => {
      sendEmpty(res, (await e.startContainer(params.id as string)) ? 204 : 304);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/stop',
    handle: async (e, { res, params, query }) => {
      const c = await e.containers.get(params.id as string);
      // Also between two runs of a restart policy: it stays stopped.
      e.stoppedByUser(c.id);
      if (c.state.status !== 'running') return sendEmpty(res, 304);
      const t = intValue(query, 't');
      const signal = query.get('signal');
      await e.containers.stop(c.id, { ...(t !== undefined && t >= 0 ? { timeout: t } : {}), ...(signal ? { signal } : {}) });
      e.events.container('stop', c);
      sendEmpty(res, 204);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/restart',
    handle: async (e, { res, params, query }) => {
      const c = await e.containers.get(params.id as string);
      const t = intValue(query, 't');
      const signal = query.get('signal');
      if (c.state.status === 'running') {
        e.stoppedByUser(c.id);
        await e.containers.stop(c.id, { ...(t !== undefined && t >= 0 ? { timeout: t } : {}), ...(signal ? { signal } : {}) });
      }
      await e.startContainer(c.id);
      e.events.container('restart', c);
      sendEmpty(res, 204);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/kill',
    handle: async (e, { res, params, query }) => {
      const c = await e.containers.get(params.id as string);
      if (c.state.status !== 'running')
        throw new FailedPreconditionError(`Cannot kill container: ${params.id}: container ${c.id} is not running`);
      const signal = query.get('signal') || 'KILL';
      if (/^(SIG)?KILL$|^9$/.test(signal.toUpperCase())) e.stoppedByUser(c.id);
      await e.containers.kill(c.id, signal);
      e.events.container('kill', c, { signal });
      sendEmpty(res, 204);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/wait',
    handle: async (e, { req, res, params, query }) => {
      const condition = query.get('condition') || 'not-running';
      if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw new InvalidArgumentError(`invalid condition "${condition}"`);
      const id = find(e, params.id as string).id;
      // The headers go out at once: `docker run` sends start only after they arrive.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      const ac = new AbortController();
      req.socket.once('close', () => ac.abort());
      try {
        const result = await e.wait(id, condition, ac.signal);
        res.end(JSON.stringify(result));
      } catch (err) {
        if (ac.signal.aborted) return;
        res.end(JSON.stringify({ StatusCode: -1, Error: { Message: (err as Error).message } }));
      }
    },
  },
  {
    method: 'DELETE',
    pattern: '/containers/{id}',
    handle: async (e, { res, params, query }) => {
      const id = find(e, params.id as string).id;
      e.stoppedByUser(id);
      try {
        await e.containers.remove(id, { force: boolValue(query, 'force'), volumes: boolValue(query, 'v') });
      } catch (err) {
        if (hasCode(err, 'FAILED_PRECONDITION')) {
          const c = find(e, id);
          throw new FailedPreconditionError(
            `cannot remove container "/${c.name}": container is running: stop the container before removing or force remove`,
            { cause: err },
          );
        }
        throw err;
      }
      sendEmpty(res, 204);
    },
  },
  ...(['pause', 'unpause'] as const).map(
    (verb): Route => ({
      method: 'POST',
      pattern: `/containers/{id}/${verb}`,
      handle: async (e, { res, params }) => {
        const c = await e.containers[verb](params.id as string);
        e.events.container(verb, c);
        sendEmpty(res, 204);
      },
    }),
  ),
  {
    method: 'POST',
    pattern: '/containers/{id}/update',
    handle: async (e, { req, res, params }) => {
      const body = await readJSON<{
        Memory: number;
        NanoCpus: number;
        PidsLimit: number | null;
        RestartPolicy: { Name?: string; MaximumRetryCount?: number };
      }>(req);
      const update: ContainerUpdate = {};
      if (body.Memory) update.Memory = body.Memory;
      if (body.NanoCpus) update.NanoCpus = body.NanoCpus;
      if (typeof body.PidsLimit === 'number' && body.PidsLimit !== 0) update.PidsLimit = Math.max(body.PidsLimit, 0);
      if (body.RestartPolicy?.Name) update.RestartPolicy = restartPolicy(body.RestartPolicy);
      const c = await e.containers.update(params.id as string, update);
      e.events.container('update', c);
      sendJSON(res, 200, { Warnings: [] });
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/rename',
    handle: async (e, { res, params, query }) => {
      const name = query.get('name');
      if (!name) throw new InvalidArgumentError('rename: a new name is required');
      const c = find(e, params.id as string);
      await e.containers.rename(c.id, name.replace(/^\//, ''));
      e.events.container('rename', { ...c, name }, { oldName: `/${c.name}` });
      sendEmpty(res, 204);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/resize',
    handle: async (e, { res, params, query }) => {
      const c = await e.containers.get(params.id as string);
      const rows = intValue(query, 'h', 0) as number;
      const cols = intValue(query, 'w', 0) as number;
      if (c.state.status !== 'running') throw new FailedPreconditionError(`container ${c.id.slice(0, 12)} is not running`);
      if (c.config.Config.Tty && rows > 0 && cols > 0) e.containers.resize(c.id, { rows, cols });
      sendEmpty(res, 200);
    },
  },
  {
    method: 'POST',
    pattern: '/containers/{id}/attach',
    handle: async (e, r) => {
      const c = await e.containers.get(r.params.id as string);
      if (c.state.status === 'exited') throw new FailedPreconditionError('You cannot attach to a stopped container, start it first');
      await serveAttach(e, c, streamResponse(r.req, r.res, c.config.Config.Tty ? rawStream : multiplexedStream), r.query);
    },
    upgrade: attachUpgrade,
  },
  {
    method: 'POST',
    pattern: '/containers/prune',
    handle: async (e, { res, query }) => {
      const r = await pruneContainers(e.berth, e.namespace, filterList(query));
      sendJSON(res, 200, { ContainersDeleted: r.ids, SpaceReclaimed: r.reclaimed });
    },
  },
  {
    method: 'POST',
    pattern: '/commit',
    handle: async (e, { req, res, query }) => {
      const container = query.get('container');
      if (!container) throw new InvalidArgumentError('commit: a container is required');
      const repo = query.get('repo');
      const tag = query.get('tag');
      const body = await readJSON<{ Cmd?: string[]; Entrypoint?: string[] }>(req);
      const changes = query.getAll('changes').flatMap((c) => c.split('\n').filter(Boolean));
      if (body.Cmd) changes.push(`CMD ${JSON.stringify(body.Cmd)}`);
      const r = await e.containers.commit(container, {
        ...(repo ? { name: formatReference(parseReference(tag ? `${repo}:${tag}` : repo)) } : {}),
        changes,
        ...(query.get('comment') ? { comment: query.get('comment') as string } : {}),
        ...(query.get('author') ? { author: query.get('author') as string } : {}),
      });
      sendJSON(res, 201, { Id: r.imageId });
    },
  },
];

function archivePath(q: URLSearchParams): string {
  const path = q.get('path');
  if (!path) throw new InvalidArgumentError('path is required');
  return path;
}

const pathStatHeader = (stat: PathStat) => Buffer.from(JSON.stringify(stat)).toString('base64');

/** A reading of a container that does not run: zeros, as dockerd sends. */
function zeroStats(): CgroupStats {
  return {
    read: '0001-01-01T00:00:00Z',
    pids_stats: { current: 0 },
    cpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 0, online_cpus: 0 },
    memory_stats: { usage: 0, limit: 0, stats: {} },
    blkio_stats: {},
  };
}

/** How docker names an image in "No such image": with its tag. */
function displayName(image: string): string {
  try {
    const ref = parseReference(image);
    return ref.digest || ref.tag ? image : `${image}:latest`;
  } catch {
    return image;
  }
}
