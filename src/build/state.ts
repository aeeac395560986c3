import type { Instruction, ShellLex } from '../dockerfile/index.js';
import type { Descriptor, Digest, ImageConfig } from '../oci/index.js';
import type { SourceTree } from './sources.js';
import type { BuildEvent, BuildHost, BuildOpts } from './types.js';

/** A stage as it is built: the image so far, its rootfs (a committed snapshot) and its cache key. */
export interface StageState {
  /** The stage's name, or its index. */
  label: string;
  index: number;
  /** The whole image config (run config, diffIDs, history) as it grows. */
  config: ImageConfig;
  layers: Descriptor[];
  /** The chainID of the committed snapshot holding the rootfs; none for an empty one (scratch). */
  top: Digest | undefined;
  /** docker media types (a docker base), else OCI. */
  docker: boolean;
  /** CMD set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  /** The ARGs declared in this stage that have a value. */
  args: Map<string, string>;
  /** The cache key of everything so far. */
  key: string;
}

/** What the steps need of the build they are in. */
export interface StepEnv {
  host: BuildHost;
  opts: BuildOpts;
  lex: ShellLex;
  context: SourceTree;
  /** The build's lease: what the build writes is held by it until an image or the cache holds it. */
  lease: string;
  /** File times in layers are clamped to this (seconds); none keeps them. */
  clamp: number | undefined;
  /** Fires when the caller aborts or another stage fails. */
  signal: AbortSignal;
  /** Where the build keeps its own files (heredocs, downloads) while it runs. */
  workDir: string;
  emit(e: BuildEvent): void;
  /** The key of a step: its parent's key, the instruction, the ARGs in scope, and `extra` (a sources digest). */
  stepKey(st: StageState, ins: Instruction, extra?: string): string;
  /**
   * A step that changes the filesystem: cached by `key`, or done by `work` in a fresh snapshot on
   * the stage's rootfs, its changes committed as a layer (none when nothing changed).
   */
  fsStep(
    st: StageState,
    step: number,
    key: string,
    createdBy: string,
    work: (rootfs: string, bundle: string) => Promise<void>,
  ): Promise<void>;
  /** The cache key of what `--from` names (a stage's key, an image's digest), without mounting it. */
  treeKey(st: StageState, from: string): Promise<string>;
  /** Runs `fn` on a source tree: the context, a stage's rootfs or an image's (`from`), with a key for what it holds. */
  withTree<T>(st: StageState, from: string | undefined, fn: (tree: SourceTree, key: string) => Promise<T>): Promise<T>;
}
