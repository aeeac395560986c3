import { diffTrees } from '../archive/index.js';
import { applyChange, type CommitResult, commitImage, resolveImage } from '../images/index.js';
import { hostPlatform, type ContainerConfig as ImageRunConfig, platformMatcher } from '../oci/index.js';
import { withRootfs } from './archive.js';
import type { ContainerContext } from './context.js';
import { getContainer } from './lifecycle.js';

// A container's filesystem leaving it: committed as an image, or exported as one tar.

/** Makes an image of the container: its writable layer's changes as a new layer on its image. */
export async function commitContainer(
  ctx: ContainerContext,
  ref: string,
  opts: { name?: string; changes?: string[]; comment?: string; author?: string; signal?: AbortSignal } = {},
): Promise<CommitResult> {
  const rec = await getContainer(ctx, ref);
  const base = await resolveImage(ctx.ns.content, rec.config.Manifest, platformMatcher(hostPlatform()), opts);
  const c = rec.config.Config;
  let config: ImageRunConfig = {
    ...(base.config.value.config ?? {}),
    Env: c.Env,
    Cmd: c.Cmd,
    Entrypoint: c.Entrypoint ?? undefined,
    WorkingDir: c.WorkingDir,
    User: c.User,
    Labels: c.Labels,
  };
  if (c.StopSignal) config.StopSignal = c.StopSignal;
  for (const change of opts.changes ?? []) config = applyChange(config, change);
  const layer = ctx.snapshots(rec).diff(rec.snapshotKey, { signal: opts.signal });
  return commitImage(ctx.ns, base, layer, {
    ...(opts.name ? { name: opts.name } : {}),
    config,
    createdBy: [...(c.Entrypoint ?? []), ...c.Cmd].join(' '),
    ...(opts.comment ? { comment: opts.comment } : {}),
    ...(opts.author ? { author: opts.author } : {}),
  });
}

/**
 * The container's filesystem as one tar, as `docker export` gives it: the image's layers with the
 * container's changes, without its mounts. `sink` consumes the tar.
 */
export async function exportContainerFs(
  ctx: ContainerContext,
  ref: string,
  sink: (tar: AsyncIterable<Uint8Array>) => Promise<void>,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await withRootfs(ctx, ref, (rootfs) => sink(diffTrees(undefined, rootfs, opts)));
}
