// undici's core, loaded on the first request without its index. The index also loads fetch,
// WebSocket, the caches and the mocks: 150-230 ms of every pull's start on this machine, where
// the agent and its request API take about 55 ms.
import { createRequire } from 'node:module';
import type { Agent, Dispatcher } from 'undici';

export interface RequestOptions extends Omit<Dispatcher.RequestOptions, 'origin' | 'path'> {
  dispatcher: Dispatcher;
}

export interface Undici {
  Agent: typeof Agent;
  request(url: string | URL, opts: RequestOptions): Promise<Dispatcher.ResponseData>;
}

let loaded: Undici | undefined;

export function undici(): Undici {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    const AgentClass = require('undici/lib/dispatcher/agent.js') as typeof Agent;
    const apiRequest = require('undici/lib/api/api-request.js') as (
      this: Dispatcher,
      opts: Dispatcher.RequestOptions,
    ) => Promise<Dispatcher.ResponseData>;
    loaded = {
      Agent: AgentClass,
      request: (url, { dispatcher, ...opts }) => {
        const u = typeof url === 'string' ? new URL(url) : url;
        return apiRequest.call(dispatcher, { ...opts, origin: u.origin, path: `${u.pathname}${u.search}` });
      },
    };
  }
  return loaded;
}
