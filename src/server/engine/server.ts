import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { NotImplementedError } from '../../errdefs/index.js';
import { buildRoutes } from './build.js';
import { containerRoutes } from './containers.js';
import type { Engine } from './engine.js';
import { execRoutes } from './exec.js';
import { sendError, statusOf } from './http.js';
import { imageRoutes } from './images.js';
import { networkRoutes } from './networks.js';
import { maxAPIVersion, parseTarget, Router } from './router.js';
import { hijacked } from './streams.js';
import { laterPrefixes, systemRoutes } from './system.js';

const router = new Router([...systemRoutes, ...imageRoutes, ...execRoutes, ...containerRoutes, ...networkRoutes, ...buildRoutes]);

/** Headers on every answer: what `/_ping` tells clients, on all of them as dockerd does. */
function commonHeaders(res: ServerResponse, version: string): void {
  res.setHeader('Api-Version', maxAPIVersion);
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Ostype', 'linux');
  res.setHeader('Builder-Version', '1');
  res.setHeader('Server', `Docker/${version} (linux)`);
  res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
  res.setHeader('Pragma', 'no-cache');
}

function routeOf(method: string, path: string) {
  try {
    return router.match(method, path);
  } catch (err) {
    const later = laterPrefixes.find((p) => path === p || path.startsWith(`${p}/`));
    if (later) throw new NotImplementedError(`${later.slice(1)} are not implemented by berth yet`);
    throw err;
  }
}

function log(req: IncomingMessage, status: number, err?: unknown): void {
  if (status >= 500 || process.env.BERTH_DEBUG) {
    process.stderr.write(`berth daemon: ${req.method} ${req.url} ${status}${err ? `: ${(err as Error).message}` : ''}\n`);
  }
}

/**
 * The Docker Engine API over an engine: an HTTP/1.1 server to listen with on unix sockets or TLS.
 * Handlers translate to the services; errors are docker's `{"message"}` with the status of their kind.
 */
export function engineServer(engine: Engine): Server {
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 60_000 }, (req, res) => {
    commonHeaders(res, engine.opts.version);
    void (async () => {
      try {
        const { version, path, query } = parseTarget(req.url ?? '/');
        const { route, params } = routeOf(req.method ?? 'GET', path);
        await route.handle(engine, { req, res, params, query, version });
        log(req, res.statusCode);
      } catch (err) {
        log(req, statusOf(err), err);
        sendError(res, err);
      }
    })();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    void (async () => {
      try {
        const { path, query } = parseTarget(req.url ?? '/');
        const { route, params } = routeOf(req.method ?? 'GET', path);
        if (!route.upgrade) throw new NotImplementedError(`${path} cannot be upgraded`);
        await route.upgrade(engine, { req, socket, head, params, query });
        log(req, 101);
      } catch (err) {
        log(req, statusOf(err), err);
        if (socket.destroyed || hijacked.has(socket)) {
          socket.destroy();
          return;
        }
        const body = JSON.stringify({ message: (err as Error).message });
        socket.end(
          `HTTP/1.1 ${statusOf(err)} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
    })();
  });
  server.on('clientError', (_err, socket) => {
    const body = '{"message":"malformed request"}';
    if (socket.writable)
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
  });
  return server;
}
