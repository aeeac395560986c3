import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { parseLabels } from './db.js';
import { validateLabels } from './identifiers.js';
import { ScopedStore } from './scoped.js';

export type ContainerStatus = 'created' | 'running' | 'exited';

/** What happened to a container: kept in the database, reconciled with the monitor's files. */
export interface ContainerState {
  status: ContainerStatus;
  /** The container's init process on the host, while running. */
  pid?: number;
  /** The monitor (conmon) and its start time in clock ticks (from /proc), to tell it from a reused pid. */
  monitorPid?: number;
  monitorStart?: number;
  /** /proc/sys/kernel/random/boot_id when it started: a different boot means it is gone. */
  bootId?: string;
  startedAt?: string;
  finishedAt?: string;
  /** null when the monitor was lost before it recorded one. */
  exitCode?: number | null;
  oomKilled?: boolean;
  error?: string;
  restartCount?: number;
  /** Frozen by `pause` while running. */
  paused?: boolean;
  /** The attachments its start made, by network name (docker's NetworkSettings.Networks), with the interface each has. */
  networks?: Record<
    string,
    {
      NetworkID: string;
      EndpointID: string;
      IPAddress: string;
      IPPrefixLen: number;
      Gateway: string;
      MacAddress: string;
      Aliases: string[];
      IfName: string;
    }
  >;
  /** The ports its start published, random host ports resolved. */
  ports?: { hostIP: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }[];
  /** The network namespace berth made for it (bridge networks), removed with the rest at the exit. */
  netns?: string;
}

/** One container record. `config` is what the caller asked for (image config overrides and host settings). */
export interface ContainerRecord<C = Record<string, unknown>> {
  id: string;
  name: string;
  /** The image as named at create time, and its ID (config digest). */
  image: string;
  imageId: string;
  snapshotter: string;
  snapshotKey: string;
  config: C;
  state: ContainerState;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  id: string;
  name: string;
  image: string;
  image_id: string;
  snapshotter: string;
  snapshot_key: string;
  config: string;
  state: string;
  labels: string;
  created_at: number;
  updated_at: number;
}

function toRecord<C>(r: Row): ContainerRecord<C> {
  return {
    id: r.id,
    name: r.name,
    image: r.image,
    imageId: r.image_id,
    snapshotter: r.snapshotter,
    snapshotKey: r.snapshot_key,
    config: JSON.parse(r.config) as C,
    state: JSON.parse(r.state) as ContainerState,
    labels: parseLabels(r.labels),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

/** docker's container name rule. */
const nameRe = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function validateContainerName(name: string): string {
  if (!nameRe.test(name))
    throw new InvalidArgumentError(`invalid container name "${name.slice(0, 130)}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name;
}

/** Container records of one namespace. IDs are 64 hex characters; names are unique in the namespace. */
export class ContainerStore extends ScopedStore {
  /** @throws AlreadyExistsError when the name is taken */
  create<C>(rec: Omit<ContainerRecord<C>, 'createdAt' | 'updatedAt'>): ContainerRecord<C> {
    validateContainerName(rec.name);
    validateLabels(rec.labels);
    const now = Date.now();
    return this.db.immediate(() => {
      this.namespaces.ensureSync(this.namespace);
      const taken = this.db.stmt('SELECT id FROM containers WHERE namespace = ? AND name = ?').get(this.namespace, rec.name) as
        | { id: string }
        | undefined;
      if (taken) {
        throw new AlreadyExistsError(
          `the container name "/${rec.name}" is already in use by container "${taken.id}": remove (or rename) that container to reuse the name`,
        );
      }
      this.db
        .stmt(
          `INSERT INTO containers (namespace, id, name, image, image_id, snapshotter, snapshot_key, config, state, labels, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          this.namespace,
          rec.id,
          rec.name,
          rec.image,
          rec.imageId,
          rec.snapshotter,
          rec.snapshotKey,
          JSON.stringify(rec.config),
          JSON.stringify(rec.state),
          JSON.stringify(rec.labels),
          now,
          now,
        );
      return { ...rec, createdAt: new Date(now), updatedAt: new Date(now) };
    });
  }

  /**
   * Finds a container as docker does: by full ID, by name (with or without a leading `/`), or by a
   * unique ID prefix. @throws NotFoundError; InvalidArgumentError when a prefix is ambiguous
   */
  find<C = Record<string, unknown>>(ref: string): ContainerRecord<C> {
    return this.db.read(() => {
      const name = ref.startsWith('/') ? ref.slice(1) : ref;
      let r = this.db.stmt('SELECT * FROM containers WHERE namespace = ? AND (id = ? OR name = ?)').get(this.namespace, ref, name) as
        | Row
        | undefined;
      if (!r && /^[a-f0-9]{1,63}$/.test(ref)) {
        const rows = this.db
          .stmt("SELECT * FROM containers WHERE namespace = ? AND id >= ? AND id < ? || 'g' LIMIT 2")
          .all(this.namespace, ref, ref) as Row[];
        if (rows.length > 1) throw new InvalidArgumentError(`multiple containers found with provided prefix: ${ref}`);
        r = rows[0];
      }
      if (!r) throw new NotFoundError(`No such container: ${ref}`);
      return toRecord<C>(r);
    });
  }

  list<C = Record<string, unknown>>(): ContainerRecord<C>[] {
    return (this.db.stmt('SELECT * FROM containers WHERE namespace = ? ORDER BY created_at DESC, id').all(this.namespace) as Row[]).map(
      (r) => toRecord<C>(r),
    );
  }

  /** Replaces the state of container `id` (callers hold the container's lock). @throws NotFoundError */
  setState(id: string, state: ContainerState): void {
    this.#set(id, 'state', state);
  }

  /** Replaces the config of container `id` (callers hold the container's lock). @throws NotFoundError */
  setConfig(id: string, config: unknown): void {
    this.#set(id, 'config', config);
  }

  #set(id: string, column: 'state' | 'config', value: unknown): void {
    this.db.immediate(() => {
      const r = this.db
        .stmt(`UPDATE containers SET ${column} = ?, updated_at = ? WHERE namespace = ? AND id = ?`)
        .run(JSON.stringify(value), Date.now(), this.namespace, id);
      if (r.changes === 0) throw new NotFoundError(`No such container: ${id}`);
    });
  }

  /** @throws NotFoundError; AlreadyExistsError when the new name is taken */
  rename(id: string, name: string): void {
    validateContainerName(name);
    this.db.immediate(() => {
      const taken = this.db.stmt('SELECT id FROM containers WHERE namespace = ? AND name = ?').get(this.namespace, name) as
        | { id: string }
        | undefined;
      if (taken && taken.id !== id)
        throw new AlreadyExistsError(`the container name "/${name}" is already in use by container "${taken.id}"`);
      const r = this.db
        .stmt('UPDATE containers SET name = ?, updated_at = ? WHERE namespace = ? AND id = ?')
        .run(name, Date.now(), this.namespace, id);
      if (r.changes === 0) throw new NotFoundError(`No such container: ${id}`);
    });
  }

  /** Removes the record. @throws NotFoundError */
  delete(id: string): void {
    this.db.immediate(() => {
      const r = this.db.stmt('DELETE FROM containers WHERE namespace = ? AND id = ?').run(this.namespace, id);
      if (r.changes === 0) throw new NotFoundError(`No such container: ${id}`);
    });
  }
}
