// The CRI messages the pods service takes and keeps, in the wire's own field names (runtime.v1,
// as @grpc/proto-loader decodes them with keepCase): only the fields berth reads. int64 values
// arrive as decimal strings.

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  target_id?: string;
}

export interface SecurityProfile {
  profile_type?: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref?: string;
}

export interface PodSandboxMetadata {
  name?: string;
  uid?: string;
  namespace?: string;
  attempt?: number;
}

export interface LinuxContainerResources {
  cpu_period?: string;
  cpu_quota?: string;
  cpu_shares?: string;
  memory_limit_in_bytes?: string;
  oom_score_adj?: string;
}

export interface PodSandboxConfig {
  metadata?: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  port_mappings?: { protocol?: 'TCP' | 'UDP' | 'SCTP'; container_port?: number; host_port?: number; host_ip?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: {
      namespace_options?: NamespaceOption;
      run_as_user?: { value?: string };
      run_as_group?: { value?: string };
      readonly_rootfs?: boolean;
      supplemental_groups?: string[];
      privileged?: boolean;
      seccomp?: SecurityProfile;
    };
    sysctls?: Record<string, string>;
  };
}

export interface ContainerConfig {
  metadata?: { name?: string; attempt?: number };
  image?: { image?: string; annotations?: Record<string, string>; user_specified_image?: string };
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key?: string; value?: string }[];
  mounts?: {
    container_path?: string;
    host_path?: string;
    readonly?: boolean;
    propagation?: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
  }[];
  devices?: { container_path?: string; host_path?: string; permissions?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: {
    resources?: LinuxContainerResources;
    security_context?: {
      capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[] };
      privileged?: boolean;
      namespace_options?: NamespaceOption;
      run_as_user?: { value?: string };
      run_as_group?: { value?: string };
      run_as_username?: string;
      readonly_rootfs?: boolean;
      supplemental_groups?: string[];
      no_new_privs?: boolean;
      masked_paths?: string[];
      readonly_paths?: string[];
      seccomp?: SecurityProfile;
    };
  };
}

/** What a sandbox record keeps beside the berth container that is its pause process. */
export interface PodExtension {
  config: PodSandboxConfig;
  runtimeHandler: string;
  /** The network namespace berth made for it (absent for host network pods, and once stopped). */
  netns?: string;
  /** The pod's address from the CNI result. */
  ip?: string;
}

/** What a CRI container record keeps beside its berth container. */
export interface PodContainerExtension {
  config: ContainerConfig;
  sandboxId: string;
  /** The image as the client named it, its repo digest (`name@sha256:…`, else its ID) and its ID. */
  image: string;
  imageRef: string;
  imageId: string;
}

/** Keys of the berth containers' Extensions. */
export const podKey = 'io.kubernetes.cri.pod';
export const containerKey = 'io.kubernetes.cri.container';

/** Labels berth puts on the containers it makes for CRI (its own, not the client's). */
export const typeLabel = 'io.kubernetes.cri.type';
export const sandboxLabel = 'io.kubernetes.cri.sandbox-id';

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
