import type { ContainerRecord, NamespaceScope } from '../metadata/index.js';
import type { Descriptor } from '../oci/index.js';
import type { SnapshotService, SnapshotterName } from '../snapshots/index.js';

/** What containers need of the root they live in (services' Berth is one). */
export interface ContainerHost {
  readonly root: string;
  /** Runtime state that must not outlive a reboot (runc's state, exit files, sockets). */
  readonly runDir: string;
  namespace(name: string): NamespaceScope;
  snapshotter(ns: string, name?: SnapshotterName): SnapshotService;
}

/** docker's `Config` half of a container: the image's config with the caller's overrides applied. */
export interface ContainerRunConfig {
  Hostname: string;
  User: string;
  Env: string[];
  Cmd: string[];
  Entrypoint: string[] | null;
  WorkingDir: string;
  Labels: Record<string, string>;
  Tty: boolean;
  OpenStdin: boolean;
  StopSignal?: string;
  StopTimeout?: number;
  Image: string;
  Volumes?: Record<string, object>;
}

/** docker's `HostConfig` half: how the host runs it. */
export interface ContainerHostConfig {
  Binds: string[];
  Tmpfs: Record<string, string>;
  NetworkMode: 'none' | 'host';
  Memory: number;
  NanoCpus: number;
  PidsLimit: number;
  Ulimits: { Name: string; Soft: number; Hard: number }[];
  Init: boolean;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  CapAdd: string[];
  CapDrop: string[];
  SecurityOpt: string[];
  AutoRemove: boolean;
  GroupAdd: string[];
  /** Applied by the daemon (`no`, `always`, `unless-stopped`, `on-failure`); absent in older records means `no`. */
  RestartPolicy?: RestartPolicy;
}

export interface RestartPolicy {
  Name: 'no' | 'always' | 'unless-stopped' | 'on-failure' | '';
  MaximumRetryCount: number;
}

/** What a container record keeps as its config. */
export interface StoredContainerConfig {
  Config: ContainerRunConfig;
  HostConfig: ContainerHostConfig;
  /** The image manifest the container was made from (commit builds on it). */
  Manifest: Descriptor;
}

export type Container = ContainerRecord<StoredContainerConfig>;

export interface CreateContainerOpts {
  name?: string;
  cmd?: string[];
  /** Replaces the image's Entrypoint (and its Cmd, as docker does); `[]` clears it. */
  entrypoint?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  openStdin?: boolean;
  labels?: Record<string, string>;
  stopSignal?: string;
  stopTimeout?: number;
  host?: Partial<ContainerHostConfig>;
}

export interface ExecOpts {
  cmd: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  tty?: boolean;
  privileged?: boolean;
}

/** Told of the changes of state one process makes (the daemon turns them into events and wakes waiters). */
export interface ContainerObserver {
  /** An exit was recorded (before an AutoRemove removes the container). */
  exited?(rec: Container): void;
  removed?(rec: Container): void;
}
