// Test support: images made by peers (umoci builds OCI layouts, skopeo copies and inspects).
import { execFile } from 'node:child_process';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 64 << 20, ...opts });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

/**
 * Builds an image with umoci in the OCI layout `layout` under `tag`: one layer per entry of
 * `layers`, each a map of path → content, and the given architecture.
 */
export async function umociImage(
  layout: string,
  tag: string,
  layers: Record<string, string | Uint8Array>[],
  opts: { arch?: string; work: string },
): Promise<void> {
  await sh('umoci', ['init', '--layout', layout]).catch(() => '');
  await sh('umoci', ['new', '--image', `${layout}:${tag}`]);
  if (opts.arch) await sh('umoci', ['config', '--image', `${layout}:${tag}`, '--architecture', opts.arch, '--config.cmd', '/bin/sh']);
  const bundle = join(opts.work, `bundle-${tag}-${Math.random().toString(36).slice(2)}`);
  for (const files of layers) {
    await rm(bundle, { recursive: true, force: true });
    await sh('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
    for (const [path, content] of Object.entries(files)) {
      const full = join(bundle, 'rootfs', path);
      await mkdir(join(full, '..'), { recursive: true });
      await writeFile(full, content);
      await chmod(full, 0o644);
    }
    await sh('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
  }
  await rm(bundle, { recursive: true, force: true });
}

/** `skopeo copy` between two transports, plain HTTP and no credentials unless given. */
export async function skopeoCopy(src: string, dst: string, extra: string[] = []): Promise<void> {
  await sh('skopeo', ['copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dst]);
}

/** `skopeo inspect --raw` (the manifest bytes) or `--config --raw` (the config bytes). */
export async function skopeoRaw(ref: string, what: 'manifest' | 'config', extra: string[] = []): Promise<string> {
  return sh('skopeo', ['inspect', '--tls-verify=false', '--raw', ...(what === 'config' ? ['--config'] : []), ...extra, ref]);
}
