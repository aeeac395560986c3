import type { Pods } from '../../pods/index.js';
import type { Session } from '../../remotes/index.js';
import type { StreamingServer } from './streaming.js';

/** What the CRI services share: the pods, a registry session per pull, and the version to report. */
export interface CriContext {
  pods: Pods;
  session(credentials?: { domain: string; username: string; secret: string }): Session;
  version: string;
  /** Where Exec, Attach and PortForward send their clients. */
  streaming: StreamingServer;
}

/** A unary RPC's handler: the decoded request in, the reply out; a rejection becomes a gRPC status. */
export type Handler = (request: never) => Promise<unknown>;
