import type { ResolvedImage } from '../images/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import type { NetworkService } from '../network/index.js';
import type { Digest, Platform } from '../oci/index.js';
import type { Runc } from '../runtime/index.js';
import type { SnapshotService } from '../snapshots/index.js';

/** What a build needs of the root it runs in. */
export interface BuildHost {
  ns: NamespaceScope;
  sn: SnapshotService;
  runc: Runc;
  network: NetworkService;
  /** Where steps keep their bundles and mounts while they run (tmpfs, under the root's run directory). */
  runDir: string;
  /** Where cache mounts (`RUN --mount=type=cache`) live across builds. */
  cacheMountDir: string;
  /**
   * A base image by reference (FROM, COPY --from, RUN --mount from=): the local one, or pulled when
   * missing, or always with `pull`. The front end decides how pulls are shown.
   */
  image(
    ref: string,
    opts: { pull: boolean; platform?: Platform; signal?: AbortSignal },
  ): Promise<{ name: string; resolved: ResolvedImage }>;
}

export interface BuildOpts {
  /** The build context on disk (a directory; the daemon extracts an uploaded one first). */
  contextDir: string;
  /** The Dockerfile's text (read by the front end: `-f`, stdin, or `<context>/Dockerfile`). */
  dockerfile: string;
  /** Image names to give the result (`-t`), full references. */
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  platform?: Platform;
  noCache?: boolean;
  pull?: boolean;
  labels?: Record<string, string>;
  /** `--secret id=X,src=FILE`: id → host file; readable by `RUN --mount=type=secret` only. */
  secrets?: Record<string, string>;
  /** The network of RUN steps: `bridge` (the default where berth can make networks), `host` or `none`. */
  network?: string;
  /**
   * Times in the image: file times in layers clamped to it, and the config's and history's dates.
   * Default 0; the build arg `SOURCE_DATE_EPOCH` wins over it. `false` keeps real times (not reproducible).
   */
  sourceDateEpoch?: number | false;
  signal?: AbortSignal;
  onEvent?: (e: BuildEvent) => void;
}

export type BuildEvent =
  /** A stage's instruction begins; `step`/`total` count over the whole Dockerfile as docker's classic builder does. */
  | { type: 'step'; step: number; total: number; stage: string; text: string }
  | { type: 'cached'; step: number }
  /** Output of a RUN step's process. */
  | { type: 'output'; step: number; data: Buffer }
  /** A step done: the image ID its state would have, as the classic builder prints (` ---> 3f2a…`); empty for a global ARG. */
  | { type: 'step-done'; step: number; id: string; seconds: number }
  | { type: 'warning'; message: string };

export interface BuildResult {
  imageId: Digest;
  manifest: Digest;
  tags: string[];
}
