import type { ContainerRecord, NamespaceScope } from '../metadata/index.js';
import type { EndpointRequest, NetworkService, PortMap } from '../network/index.js';
import type { Descriptor } from '../oci/index.js';
import type { SnapshotService, SnapshotterName } from '../snapshots/index.js';
import type { VolumeStore } from '../volumes/index.js';

/** What containers need of the root they live in (services' Berth is one). */
export interface ContainerHost {
  readonly root: string;
  /** Runtime state that must not outlive a reboot (runc's state, exit files, sockets). */
  readonly runDir: string;
  namespace(name: string): NamespaceScope;
  /** Every namespace's name (networks are the root's: their peers may be in any). */
  namespaceNames(): string[];
  snapshotter(ns: string, name?: SnapshotterName): SnapshotService;
  /** The root's networks and the CNI attachments. */
  readonly network: NetworkService;
  /** The root's named volumes. */
  readonly volumes: VolumeStore;
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
  /** `80/tcp` → {}: the image's EXPOSE and `--expose` (what `-P` publishes). */
  ExposedPorts?: Record<string, object>;
  Domainname?: string;
}

/** docker's `HostConfig` half: how the host runs it. */
export interface ContainerHostConfig {
  /** `-v`: `HOST:CONTAINER[:ro]` binds, `NAME:CONTAINER` volumes. */
  Binds: string[];
  /** `--mount`. */
  Mounts?: MountRequest[];
  /** `--volumes-from CONTAINER[:ro|rw]`. */
  VolumesFrom?: string[];
  Tmpfs: Record<string, string>;
  /** `none`, `host`, `bridge` (`default`), a network's name, `container:ID`, or `ns:PATH` (a namespace made by the caller, podman's form). */
  NetworkMode: string;
  /** docker's `--ipc`, `--pid` and `--uts`: `host`, `container:ID` (that container's), or a namespace of its own (empty, `private`, `shareable`). */
  IpcMode?: string;
  PidMode?: string;
  UTSMode?: string;
  /** The cgroup the container's own goes under (default `/berth`). */
  CgroupParent?: string;
  /** `--device HOST[:CONTAINER[:rwm]]`. */
  Devices?: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[];
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  OomScoreAdj?: number;
  /** Replace the default lists of masked and read-only /proc and /sys paths. */
  MaskedPaths?: string[];
  ReadonlyPaths?: string[];
  Sysctls?: Record<string, string>;
  /** Passed to the runtime spec's annotations. */
  Annotations?: Record<string, string>;
  PortBindings?: PortMap;
  /** Publish every exposed port on a random host port (`-P`). */
  PublishAllPorts?: boolean;
  Dns?: string[];
  DnsSearch?: string[];
  DnsOptions?: string[];
  /** `name:ip` lines for /etc/hosts. */
  ExtraHosts?: string[];
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
  /** The networks it joins (by name), the first its NetworkMode, with its aliases and fixed address. */
  Networks?: Record<string, EndpointRequest>;
  /** Its mounts as resolved at create (volumes named, anonymous ones made). */
  MountPoints?: MountPoint[];
  /** Where the monitor writes its CRI-format log (default: `container.log` in its directory). */
  LogPath?: string;
  /** What a client keeps with the container, by the client's key (containerd's extensions): CRI's pod and container configs. */
  Extensions?: Record<string, unknown>;
}

export type Container = ContainerRecord<StoredContainerConfig>;

export interface CreateContainerOpts {
  /** The caller's ID (64 hex digits; default a random one): CRI makes the pod's network under it first. */
  id?: string;
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
  exposedPorts?: string[];
  /** Per network: aliases (`--network-alias`), a fixed address (`--ip`). */
  networks?: Record<string, EndpointRequest>;
  logPath?: string;
  extensions?: Record<string, unknown>;
}

export interface ExecOpts {
  cmd: string[];
  /** The terminal's size from the start (with `tty`). */
  size?: { rows: number; cols: number };
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

/** docker's HostConfig.Mounts entry (what `--mount` gives too). */
export interface MountRequest {
  Type: 'bind' | 'volume' | 'tmpfs';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string; CreateMountpoint?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** One resolved mount (docker's MountPoint): what the container's starts mount. */
export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs';
  /** The volume's name. */
  Name?: string;
  /** A bind's host path. */
  Source: string;
  Destination: string;
  RW: boolean;
  Mode: string;
  /** Made for this container: `rm -v` removes it. */
  Anonymous?: boolean;
  /** Do not fill the volume from the image. */
  NoCopy?: boolean;
  /** tmpfs mount options (size=, mode=). */
  TmpfsOptions?: string[];
  /** A bind from `-v` makes its missing host directory; `--mount` refuses one. */
  CreateSource?: boolean;
}
