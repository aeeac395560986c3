// Test support: small images made from the Debian busybox-static binary, built by umoci (the layer
// by GNU tar) and pushed to a test registry by skopeo.
import { chown, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { umociLayers } from './layers.js';
import { sh, skopeoCopy } from './peers.js';

export interface BusyboxImageOpts {
  /** umoci config flags, e.g. `['--config.workingdir', '/srv']`. */
  config?: string[];
  /** Extra files (path → content) and symlinks (path → `{ symlink }`) in the layer. */
  files?: Record<string, string | Buffer | { symlink: string }>;
}

const passwd =
  'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app user:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const group = 'root:x:0:\nwheel:x:10:app\nstaff:x:50:app,other\napp:x:1000:\nnogroup:x:65534:\n';

/**
 * Builds `busybox` (every applet linked), /etc/passwd with root, app (1000, groups wheel and staff)
 * and nobody, as one layer; pushes it to `host/repo:tag` and returns that reference.
 */
export async function pushBusyboxImage(work: string, host: string, repo: string, opts: BusyboxImageOpts = {}): Promise<string> {
  const dir = join(work, `bb-${repo.replace(/\W/g, '_')}-${Math.random().toString(36).slice(2, 8)}`);
  const layer = await busyboxLayer(dir, opts.files ?? {});
  const ref = await pushLayers(dir, host, repo, [layer], opts.config ?? []);
  await rm(dir, { recursive: true, force: true });
  return ref;
}

/**
 * Images that share their bottom layer (busybox, as above) and differ in a small top layer each
 * (`repo → files`): what GC and the size views are tested on. Returns the references by repo.
 */
export async function pushSharedImages(
  work: string,
  host: string,
  tops: Record<string, Record<string, string | Buffer>>,
): Promise<Record<string, string>> {
  const dir = join(work, `bb-shared-${Math.random().toString(36).slice(2, 8)}`);
  const base = await busyboxLayer(dir, {});
  const refs: Record<string, string> = {};
  for (const [repo, files] of Object.entries(tops)) {
    const top = join(dir, `top-${repo.replace(/\W/g, '_')}`);
    await mkdir(top, { recursive: true });
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(top, path, '..'), { recursive: true });
      await writeFile(join(top, path), content);
    }
    await sh('tar', ['--numeric-owner', '--sort=name', '-C', top, '-cf', `${top}.tar`, '.']);
    refs[repo] = await pushLayers(join(dir, repo.replace(/\W/g, '_')), host, repo, [base, `${top}.tar`], []);
  }
  await rm(dir, { recursive: true, force: true });
  return refs;
}

async function busyboxLayer(dir: string, files: NonNullable<BusyboxImageOpts['files']>): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'home/app', 'proc', 'sys', 'dev']) await mkdir(join(rootfs, d), { recursive: true });
  await sh('cp', ['/usr/bin/busybox', join(rootfs, 'bin/busybox')]);
  const applets = (await sh('/usr/bin/busybox', ['--list'])).split('\n').filter((a) => a && a !== 'busybox');
  await Promise.all(applets.map((a) => symlink('busybox', join(rootfs, 'bin', a))));
  await writeFile(join(rootfs, 'etc/passwd'), passwd);
  await writeFile(join(rootfs, 'etc/group'), group);
  await sh('chmod', ['1777', join(rootfs, 'tmp')]);
  await chown(join(rootfs, 'home/app'), 1000, 1000);
  for (const [path, content] of Object.entries(files)) {
    const full = join(rootfs, path);
    await mkdir(join(full, '..'), { recursive: true });
    await rm(full, { force: true, recursive: true });
    if (typeof content === 'object' && 'symlink' in content) await symlink(content.symlink, full);
    else await writeFile(full, content);
  }
  const layer = join(dir, 'layer.tar');
  await sh('tar', ['--numeric-owner', '--sort=name', '-C', rootfs, '-cf', layer, '.']);
  return layer;
}

/** An OCI layout of `layers` (umoci gzips them), `CMD sh` plus `config`, pushed by skopeo to `host/repo:latest`. */
async function pushLayers(dir: string, host: string, repo: string, layers: string[], config: string[]): Promise<string> {
  const layout = join(dir, 'layout');
  await umociLayers(layout, 'latest', layers);
  await sh('umoci', ['config', '--image', `${layout}:latest`, '--config.cmd', 'sh', ...config]);
  const ref = `${host}/${repo}:latest`;
  await skopeoCopy(`oci:${layout}:latest`, `docker://${ref}`);
  return ref;
}
