import { EventEmitter } from 'node:events';
import { watch } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Container, Containers, RestartPolicy } from '../../containers/index.js';
import { hasCode, InvalidArgumentError } from '../../errdefs/index.js';
import { authConfigCredentials, type Credentials, Session, type SessionOpts } from '../../remotes/index.js';
import type { Monitor } from '../../runtime/index.js';
import { type Berth, exitCodeOf } from '../../services/index.js';
import { EventLog } from './events.js';

export interface EngineOpts {
  /** The namespace the Engine API works in (containerd keeps `moby` for dockerd; berth's default is `default`). */
  namespace?: string;
  /** Registry options (hosts directories, insecure registries); credentials come with each request. */
  session?: SessionOpts;
  /** The version `/version` reports. */
  version: string;
}

/** What `wait` answers. */
export interface WaitResult {
  StatusCode: number;
  Error: { Message: string } | null;
}

/** How long a removed container's exit status is kept for a late `wait` (dockerode waits after an AutoRemove). */
const exitMemory = 60_000;

/**
 * The daemon's state over one root and namespace: what the handlers share beyond the stores. It
 * watches the exits of running containers (their monitors, or the exits directory for those the
 * daemon did not start), turns changes into events, wakes waiters and applies restart policies.
 * Everything it keeps in memory can be lost: the containers belong to their monitors.
 */
export class Engine {
  readonly berth: Berth;
  readonly namespace: string;
  readonly containers: Containers;
  readonly events = new EventLog();
  readonly opts: EngineOpts;
  /** Changes of one container, by ID: `exit`, `remove`, `start`. */
  readonly #changes = new EventEmitter();
  /** Attach clients waiting for a created container to start: each connects before it runs. */
  readonly #pendingAttach = new Map<string, Set<(bundle: string) => void>>();
  readonly #lastExit = new Map<string, { code: number; error?: string }>();
  readonly #watched = new Set<string>();
  /** The monitors this daemon started and still holds (their sync pipes), released at close. */
  readonly #monitors = new Set<Monitor>();
  /** Containers a user stopped: `unless-stopped` and `always` leave them stopped. */
  readonly #stoppedByUser = new Set<string>();
  readonly #restartCounts = new Map<string, number>();
  #closed = false;
  #exitWatcher: ReturnType<typeof watch> | undefined;

  constructor(berth: Berth, opts: EngineOpts) {
    this.berth = berth;
    this.opts = opts;
    this.namespace = opts.namespace ?? 'default';
    this.#changes.setMaxListeners(0);
    this.containers = berth.containers(this.namespace, {
      exited: (rec) => {
        this.#lastExit.set(rec.id, { code: exitCodeOf(rec), ...(rec.state.error ? { error: rec.state.error } : {}) });
        setTimeout(() => this.#lastExit.delete(rec.id), exitMemory).unref();
        this.events.container('die', rec, { exitCode: String(exitCodeOf(rec)) });
        this.#changes.emit(rec.id, 'exit');
        void this.#afterExit(rec);
      },
      removed: (rec) => {
        this.events.container('destroy', rec);
        this.#changes.emit(rec.id, 'remove');
      },
    });
  }

  /**
   * Adopts what is on disk: watches the exits directory and every running container, and starts
   * the containers whose restart policy says so (`always`, `unless-stopped` after a reboot).
   */
  async start(): Promise<void> {
    const exits = this.containers.paths('x').exitDir;
    await mkdir(exits, { recursive: true });
    this.#exitWatcher = watch(exits, (_type, file) => {
      if (file) void this.#checkExit(String(file));
    });
    this.#exitWatcher.on('error', () => {});
    for (const c of await this.containers.list()) {
      if (c.state.status === 'running') this.#watch(c.id);
      else if (c.state.status === 'exited' && this.#restarts(c, true)) void this.#restart(c.id, 0);
    }
    // A slow look over every container for changes made where no event reaches (another process).
    void this.#sweep();
  }

  /**
   * A registry session with the credentials of docker's `X-Registry-Auth` header (base64url JSON:
   * `{username, password, serveraddress}` or `{identitytoken}`) for `domain`; anonymous without one.
   * dockerd keeps no credentials of its own: the client sends them.
   */
  session(domain: string, header: string | undefined): Session {
    const auth: Record<string, Credentials> = {};
    if (header && header.trim() !== '') {
      const creds = authConfigCredentials(decodeAuthHeader(header, 'X-Registry-Auth') as AuthConfig);
      if (creds) auth[domain] = creds;
    }
    return new Session({ ...this.opts.session, credentialsFile: null, auth });
  }

  /** A session with the credentials of `X-Registry-Config` (build's header: registry → auth config). */
  sessionForConfig(header: string | undefined): Session {
    const auth: Record<string, Credentials> = {};
    if (header && header.trim() !== '') {
      const map = decodeAuthHeader(header, 'X-Registry-Config') as Record<string, AuthConfig>;
      for (const [server, v] of Object.entries(map ?? {})) {
        const creds = authConfigCredentials(v);
        if (creds) auth[registryDomain(server)] = creds;
      }
    }
    return new Session({ ...this.opts.session, credentialsFile: null, auth });
  }

  /** Checks credentials against a registry, as `docker login` asks the daemon to. */
  async login(username: string, password: string, server: string): Promise<void> {
    const domain = registryDomain(server);
    const session = new Session({ ...this.opts.session, credentialsFile: null, auth: { [domain]: { username, secret: password } } });
    try {
      await session.ping(domain);
    } finally {
      await session.close();
    }
  }

  close(): void {
    this.#closed = true;
    for (const m of this.#monitors) m.release();
    this.#exitWatcher?.close();
  }

  async #sweep(): Promise<void> {
    while (!this.#closed) {
      await sleep(2000, undefined, { ref: false });
      for (const c of await this.containers.list().catch(() => [])) if (c.state.status === 'running') this.#watch(c.id);
    }
  }

  /** A container's exit is recorded by whichever look comes first; this one follows conmon's exit file. */
  async #checkExit(id: string): Promise<void> {
    for (const delay of [0, 20, 100, 500]) {
      await sleep(delay);
      try {
        const c = await this.containers.get(id);
        if (c.state.status !== 'running') return;
      } catch {
        return; // not ours (another namespace), or removed
      }
    }
  }

  /** Follows a running container until its exit is recorded. */
  #watch(id: string, monitor?: Monitor): void {
    if (this.#watched.has(id)) return;
    this.#watched.add(id);
    const done = async () => {
      try {
        if (monitor) {
          this.#monitors.add(monitor);
          await monitor.exited;
          this.#monitors.delete(monitor);
          if (this.#closed) return;
          await this.containers.cleanup(id);
        } else {
          // Not started here: conmon's exit file (watched) or this poll tells.
          for (;;) {
            const c = await this.containers.get(id);
            if (c.state.status !== 'running' || this.#closed) break;
            await sleep(1000, undefined, { ref: false });
          }
        }
      } catch (err) {
        if (!hasCode(err, 'NOT_FOUND')) process.stderr.write(`berth daemon: container ${id.slice(0, 12)}: ${(err as Error).message}\n`);
      } finally {
        this.#watched.delete(id);
      }
    };
    void done();
  }

  /**
   * Starts a container; attach clients waiting for it connect first. Returns false when it was
   * running already (docker's 304).
   */
  async startContainer(ref: string): Promise<boolean> {
    const id = this.containers.ns.containers.find(ref).id;
    const pending = this.#pendingAttach.get(id);
    const r = await this.containers.start(id, {
      exitCommand: false,
      beforeStart: (bundle) => {
        for (const connect of pending ?? []) connect(bundle);
        this.#pendingAttach.delete(id);
      },
    });
    if (!r.monitor) return false;
    this.#stoppedByUser.delete(id);
    this.events.container('start', r.container);
    this.#changes.emit(id, 'start');
    this.#watch(id, r.monitor);
    return true;
  }

  /** Registers an attach client for a created container; `connect` runs when it starts. Returns the unregistration. */
  onStart(id: string, connect: (bundle: string) => void): () => void {
    let set = this.#pendingAttach.get(id);
    if (!set) {
      set = new Set();
      this.#pendingAttach.set(id, set);
    }
    set.add(connect);
    return () => set.delete(connect);
  }

  /** Records that a user stopped or killed the container: its restart policy does not bring it back. */
  stoppedByUser(id: string): void {
    this.#stoppedByUser.add(id);
  }

  /**
   * Waits for `condition` (`not-running`, `next-exit`, `removed`) and returns the exit status.
   * Events from this process wake it at once; a poll catches changes made elsewhere.
   */
  async wait(ref: string, condition: string, signal: AbortSignal): Promise<WaitResult> {
    const id = this.containers.ns.containers.find(ref).id;
    const since = Date.now();
    let seen: string | undefined;
    const onChange = (what: string) => {
      if (condition === 'removed' ? what === 'remove' : what === 'exit') seen = what;
    };
    this.#changes.on(id, onChange);
    try {
      for (;;) {
        let c: Container | undefined;
        try {
          c = await this.containers.get(id);
        } catch (err) {
          if (!hasCode(err, 'NOT_FOUND')) throw err;
        }
        if (!c) return this.#result(id);
        // An exit recorded by another process since the call counts as the next one.
        if (c.state.status === 'exited' && Date.parse(c.state.finishedAt ?? '') >= since - 5) seen ??= 'exit';
        if (seen || (condition === 'not-running' && c.state.status !== 'running')) {
          if (condition !== 'removed') return this.#result(id, c);
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            this.#changes.off(id, wake);
            signal.removeEventListener('abort', wake);
            resolve();
          };
          const timer = setTimeout(wake, 1000);
          this.#changes.on(id, wake);
          signal.addEventListener('abort', wake);
        });
        signal.throwIfAborted();
      }
    } finally {
      this.#changes.off(id, onChange);
    }
  }

  #result(id: string, c?: Container): WaitResult {
    if (c && c.state.status === 'exited') {
      return { StatusCode: exitCodeOf(c), Error: c.state.error ? { Message: c.state.error } : null };
    }
    const last = this.#lastExit.get(id);
    return { StatusCode: last?.code ?? 0, Error: last?.error ? { Message: last.error } : null };
  }

  #restarts(c: Container, atBoot = false): boolean {
    const policy: RestartPolicy = c.config.HostConfig.RestartPolicy ?? { Name: 'no', MaximumRetryCount: 0 };
    if (c.config.HostConfig.AutoRemove) return false;
    switch (policy.Name) {
      case 'always':
        return !this.#stoppedByUser.has(c.id) || atBoot;
      case 'unless-stopped':
        return !this.#stoppedByUser.has(c.id) && (!atBoot || c.state.error !== undefined);
      case 'on-failure': {
        if (atBoot || exitCodeOf(c) === 0) return false;
        const n = this.#restartCounts.get(c.id) ?? 0;
        return policy.MaximumRetryCount <= 0 || n < policy.MaximumRetryCount;
      }
      default:
        return false;
    }
  }

  async #afterExit(rec: Container): Promise<void> {
    if (this.#closed || !this.#restarts(rec)) return;
    const n = (this.#restartCounts.get(rec.id) ?? 0) + 1;
    this.#restartCounts.set(rec.id, n);
    // docker's backoff: 100 ms, doubling, at most a minute.
    await this.#restart(rec.id, Math.min(100 * 2 ** (n - 1), 60_000));
  }

  async #restart(id: string, delay: number): Promise<void> {
    await sleep(delay, undefined, { ref: false });
    if (this.#closed || this.#stoppedByUser.has(id)) return;
    try {
      await this.startContainer(id);
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND')) process.stderr.write(`berth daemon: restart ${id.slice(0, 12)}: ${(err as Error).message}\n`);
    }
  }
}

interface AuthConfig {
  username?: string;
  password?: string;
  identitytoken?: string;
  auth?: string;
}

function decodeAuthHeader(header: string, name: string): unknown {
  try {
    return JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidArgumentError(`invalid ${name} header: not base64url JSON`);
  }
}

/** A registry's domain from a server address as docker writes it (`https://index.docker.io/v1/` is docker.io). */
function registryDomain(server: string): string {
  const domain = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return domain === '' || domain === 'index.docker.io' || domain === 'registry-1.docker.io' ? 'docker.io' : domain;
}
