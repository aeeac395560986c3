import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '../../errdefs/index.js';
import type { Engine } from './engine.js';
import type { Request } from './http.js';

/** The API versions served: `/v1.24` to `/v<maxAPIVersion>`, and paths without one. */
export const minAPIVersion = '1.24';
export const maxAPIVersion = '1.43';

/** An upgraded (hijacked) request: the socket is the handler's once it answers. */
export interface UpgradeRequest {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  params: Record<string, string>;
  query: URLSearchParams;
}

export interface Route {
  method: string;
  /** `{name}` matches one path segment; `{name*}` matches the rest up to the pattern's tail (image names hold `/`). */
  pattern: string;
  handle: (engine: Engine, r: Request) => Promise<void>;
  /** For attach and exec start, which may be hijacked. */
  upgrade?: (engine: Engine, r: UpgradeRequest) => Promise<void>;
}

interface Compiled {
  route: Route;
  re: RegExp;
  names: string[];
}

export class Router {
  readonly #routes: Compiled[];

  constructor(routes: Route[]) {
    this.#routes = routes.map((route) => {
      const names: string[] = [];
      const re = route.pattern
        .split(/(\{[a-zA-Z]+\*?\})/)
        .map((part) => {
          const m = /^\{([a-zA-Z]+)(\*?)\}$/.exec(part);
          if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(m[1] as string);
          return m[2] ? '(.+)' : '([^/]+)';
        })
        .join('');
      return { route, re: new RegExp(`^${re}$`), names };
    });
  }

  /** The route for a method and a path (without its version prefix), with the path's parameters. @throws NotFoundError */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    for (const c of this.#routes) {
      if (c.route.method !== method) continue;
      const m = c.re.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      c.names.forEach((n, i) => {
        try {
          params[n] = decodeURIComponent(m[i + 1] as string);
        } catch {
          throw new InvalidArgumentError(`invalid escape in path "${path.slice(0, 200)}"`);
        }
      });
      return { route: c.route, params };
    }
    throw new NotFoundError('page not found');
  }
}

function versionNumber(v: string): number {
  const [major, minor] = v.split('.').map(Number) as [number, number];
  return major * 1000 + minor;
}

/**
 * Splits `/v1.43/containers/json?all=1` into its version, path and query.
 * @throws InvalidArgumentError for a version outside the range served (dockerd answers 400)
 */
export function parseTarget(target: string): { version: string; path: string; query: URLSearchParams } {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(rawPath);
  if (!m) return { version: maxAPIVersion, path: rawPath, query };
  const version = m[1] as string;
  if (versionNumber(version) > versionNumber(maxAPIVersion)) {
    throw new InvalidArgumentError(`client version ${version} is too new. Maximum supported API version is ${maxAPIVersion}`);
  }
  if (versionNumber(version) < versionNumber(minAPIVersion)) {
    throw new InvalidArgumentError(
      `client version ${version} is too old. Minimum supported API version is ${minAPIVersion}, please upgrade your client to a newer version`,
    );
  }
  return { version, path: m[2] as string, query };
}
