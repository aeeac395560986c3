import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { isMountPoint, unmount } from '../snapshots/index.js';

const run = promisify(execFile);

// Named volumes, docker's local driver: `<root>/volumes/<name>/_data` holds the data and
// `volume.json` beside it the record. With options (`-o type=tmpfs -o device=tmpfs -o o=size=64m`)
// the data directory is a mount of that, made when a container first uses it.

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  /** RFC 3339. */
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  /** Made for an image's VOLUME or an unnamed mount; `rm -v` removes it with its container. */
  Anonymous?: boolean;
}

const validName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const driverOptions = new Set(['type', 'device', 'o']);

export class VolumeStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'volumes');
  }

  /**
   * Creates a volume, or returns the one of that name (docker's create is idempotent); no name
   * makes an anonymous one. @throws InvalidArgumentError for a bad name, driver or option
   */
  create(name?: string, opts: { driver?: string; labels?: Record<string, string>; options?: Record<string, string> } = {}): VolumeRecord {
    const vname = name || randomBytes(32).toString('hex');
    if (!validName.test(vname)) {
      throw new InvalidArgumentError(`invalid volume name "${vname}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, two characters or more`);
    }
    if (opts.driver && opts.driver !== 'local')
      throw new InvalidArgumentError(`volume driver "${opts.driver}" is not supported (berth has local)`);
    for (const k of Object.keys(opts.options ?? {})) {
      if (!driverOptions.has(k)) throw new InvalidArgumentError(`invalid option "${k}" for the local driver (want type, device, o)`);
    }
    if (opts.options?.type && !opts.options.device) throw new InvalidArgumentError('the local driver needs device= with type=');
    const existing = this.#read(vname);
    if (existing) return existing;
    const rec: VolumeRecord = {
      Name: vname,
      Driver: 'local',
      CreatedAt: new Date().toISOString(),
      Labels: opts.labels ?? {},
      Options: opts.options ?? {},
      ...(name ? {} : { Anonymous: true }),
    };
    const dir = join(this.dir, vname);
    mkdirSync(join(dir, '_data'), { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, 'volume.json.tmp'), `${JSON.stringify(rec, null, 2)}\n`);
    renameSync(join(dir, 'volume.json.tmp'), join(dir, 'volume.json'));
    return this.#read(vname) ?? rec;
  }

  /** @throws NotFoundError */
  get(name: string): VolumeRecord {
    const rec = this.#read(name);
    if (!rec) throw new NotFoundError(`get ${name}: no such volume`);
    return rec;
  }

  has(name: string): boolean {
    return this.#read(name) !== undefined;
  }

  list(): VolumeRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.flatMap((n) => this.#read(n) ?? []).sort((a, b) => (a.CreatedAt < b.CreatedAt ? -1 : a.CreatedAt > b.CreatedAt ? 1 : 0));
  }

  /** The host directory a container mounts (mounted first when the volume has driver options). */
  async mountpoint(name: string): Promise<string> {
    const rec = this.get(name);
    const data = this.dataDir(name);
    if (rec.Options.type && !isMountPoint(data)) {
      const args = ['-t', rec.Options.type, ...(rec.Options.o ? ['-o', rec.Options.o] : []), rec.Options.device as string, data];
      await run('mount', args).catch((err) => {
        throw new InvalidArgumentError(`volume ${name}: mount ${args.join(' ')}: ${String(err.stderr || err.message).trim()}`);
      });
    }
    return data;
  }

  dataDir(name: string): string {
    return join(this.dir, name, '_data');
  }

  /** Deletes the volume and its data (the caller made sure no container uses it). */
  async remove(name: string): Promise<void> {
    this.get(name);
    const data = this.dataDir(name);
    if (isMountPoint(data)) await unmount(data);
    rmSync(join(this.dir, name, 'volume.json'), { force: true }); // first: a crash leaves no half volume listed
    rmSync(join(this.dir, name), { recursive: true, force: true });
  }

  /** Directories under volumes/ without a record (a crash in create or remove): fsck's orphans. */
  orphans(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => !existsSync(join(this.dir, n, 'volume.json')));
  }

  #read(name: string): VolumeRecord | undefined {
    if (!validName.test(name)) return undefined;
    try {
      return JSON.parse(readFileSync(join(this.dir, name, 'volume.json'), 'utf8')) as VolumeRecord;
    } catch {
      return undefined;
    }
  }
}
