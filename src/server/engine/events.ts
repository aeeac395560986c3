import { EventEmitter } from 'node:events';
import type { Container } from '../../containers/index.js';
import { InvalidArgumentError } from '../../errdefs/index.js';

/** One event as `GET /events` sends it (docker's `events.Message`). */
export interface EngineEvent {
  Type: 'container' | 'image' | 'network' | 'volume' | 'daemon';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  /** The pre-1.22 fields the docker CLI still prints from. */
  status?: string;
  id?: string;
  from?: string;
}

/** Events kept for `since`: the newest, at most this many. */
const kept = 1024;

/** The daemon's events: the last {@link kept} for `since`, and a feed for followers. */
export class EventLog extends EventEmitter<{ event: [EngineEvent] }> {
  readonly #ring: EngineEvent[] = [];

  constructor() {
    super();
    this.setMaxListeners(0);
  }

  emitEvent(type: EngineEvent['Type'], action: string, id: string, attributes: Record<string, string> = {}): void {
    const nano = BigInt(Date.now()) * 1_000_000n;
    const e: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nano / 1_000_000_000n),
      timeNano: Number(nano),
    };
    if (type !== 'daemon') Object.assign(e, { status: action, id, ...(attributes.image ? { from: attributes.image } : {}) });
    this.#ring.push(e);
    if (this.#ring.length > kept) this.#ring.shift();
    this.emit('event', e);
  }

  container(action: string, c: Container, extra: Record<string, string> = {}): void {
    this.emitEvent('container', action, c.id, { ...c.labels, image: c.config.Config.Image, name: c.name, ...extra });
  }

  image(action: string, id: string, name?: string): void {
    this.emitEvent('image', action, id, name ? { name } : {});
  }

  /** The kept events from `since` (ms) on. */
  history(since: number): EngineEvent[] {
    return this.#ring.filter((e) => e.timeNano / 1e6 >= since);
  }
}

/** docker's event filters (`type`, `event`, `container`, `image`, `label`) as one predicate. */
export function eventFilter(filters: string[]): (e: EngineEvent) => boolean {
  const by = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    const [k, v] = [f.slice(0, i), f.slice(i + 1)];
    if (!['type', 'event', 'container', 'image', 'label'].includes(k)) {
      throw new InvalidArgumentError(`invalid filter "${k}" (want type, event, container, image or label)`);
    }
    by.set(k, [...(by.get(k) ?? []), v]);
  }
  const any = (k: string, test: (v: string) => boolean) => !by.has(k) || (by.get(k) as string[]).some(test);
  return (e) =>
    any('type', (v) => v === e.Type) &&
    any('event', (v) => v === e.Action) &&
    any('container', (v) => e.Type === 'container' && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v)) &&
    any('image', (v) => e.Actor.Attributes.image === v || (e.Type === 'image' && (e.Actor.ID === v || e.Actor.Attributes.name === v))) &&
    any('label', (v) => {
      const j = v.indexOf('=');
      return j < 0 ? v in e.Actor.Attributes : e.Actor.Attributes[v.slice(0, j)] === v.slice(j + 1);
    });
}
