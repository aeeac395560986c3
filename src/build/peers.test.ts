// berth build against its peers, on one corpus of Dockerfiles: buildah bud (1.28) and docker's
// classic builder (a private dockerd). The images' filesystems must be the same, entry by entry
// (times aside: berth clamps them), and the configs must agree in the fields a Dockerfile sets.
// Then images cross over: berth's run under dockerd, docker's under berth.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pushBusyboxImage } from '../testutil/busybox.js';
import { berth, cleanupRoots, ok } from '../testutil/cli.js';
import { type Dockerd, startDockerd } from '../testutil/dockerd.js';
import { sh, skopeoCopy } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';
import { describeTree, type TreeEntry } from '../testutil/tree.js';

type Files = Record<string, string | Buffer | { symlink: string }>;

let work: string;
let root: string;
let registry: TestRegistry;
let dockerd: Dockerd;
let base: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-build-peers-'));
  root = join(work, 'root');
  registry = await startRegistry();
  base = await pushBusyboxImage(work, registry.host, 'busybox');
  const d = await startDockerd(join(work, 'dockerd'));
  if ('unavailable' in d) throw new Error(d.unavailable);
  dockerd = d;
  await dockerd.docker('pull', '-q', base);
});

after(async () => {
  await dockerd?.stop();
  await cleanupRoots([root]);
  if (work) {
    await sh('buildah', ['--root', join(work, 'buildah'), '--runroot', join(work, 'buildah-run'), 'rm', '--all']).catch(() => '');
    await sh('umount', ['-R', join(work, 'buildah')]).catch(() => '');
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
  await registry?.stop();
});

async function writeContext(dir: string, files: Files): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    await mkdir(join(full, '..'), { recursive: true });
    if (typeof content === 'object' && 'symlink' in content) await symlink(content.symlink, full);
    else await writeFile(full, content);
  }
}

const buildah = (...args: string[]) => sh('buildah', ['--root', join(work, 'buildah'), '--runroot', join(work, 'buildah-run'), ...args]);

/** An OCI layout's image unpacked by umoci: its tree without times, and its config. */
async function inspectLayout(layout: string, tag: string): Promise<{ tree: Omit<TreeEntry, 'mtime'>[]; config: Record<string, unknown> }> {
  const rootfs = join(work, `rootfs-${Math.random().toString(36).slice(2)}`);
  await sh('umoci', ['raw', 'unpack', '--image', `${layout}:${tag}`, rootfs]);
  const tree = (await describeTree(rootfs)).map(({ mtime: _m, ...e }) => e);
  await rm(rootfs, { recursive: true, force: true });
  const config = JSON.parse(await sh('skopeo', ['inspect', '--config', '--raw', `oci:${layout}:${tag}`])) as {
    config?: Record<string, unknown>;
  };
  return { tree, config: config.config ?? {} };
}

/** The config fields a Dockerfile sets, as docker writes them (empty ones dropped, buildah's own label aside). */
function dockerfileFields(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of [
    'Env',
    'Cmd',
    'Entrypoint',
    'WorkingDir',
    'User',
    'Labels',
    'ExposedPorts',
    'Volumes',
    'StopSignal',
    'Healthcheck',
    'OnBuild',
    'Shell',
  ]) {
    let v = c[k];
    if (k === 'Labels' && v)
      v = Object.fromEntries(Object.entries(v as Record<string, string>).filter(([l]) => l !== 'io.buildah.version'));
    if (v === undefined || v === null || v === '' || (typeof v === 'object' && Object.keys(v as object).length === 0)) continue;
    out[k] = v;
  }
  return out;
}

async function buildAll(name: string, dockerfile: string, files: Files) {
  const ctx = join(work, 'ctx', name);
  await writeContext(ctx, { ...files, Dockerfile: dockerfile });
  const layouts = join(work, 'layouts');
  await mkdir(layouts, { recursive: true });
  const args = ['--build-arg', `BASE=${base}`];
  // berth
  ok(await berth(root, ['build', '--network', 'none', ...args, '-q', '-t', `corpus/${name}`, ctx]), `berth build ${name}`);
  const berthTar = join(work, `${name}.berth.tar`);
  ok(await berth(root, ['save', '-o', berthTar, `corpus/${name}`]), 'berth save');
  await skopeoCopy(`docker-archive:${berthTar}`, `oci:${layouts}/berth:${name}`);
  // docker's classic builder
  await dockerd.docker('build', '--network', 'none', ...args, '-q', '-t', `corpus-${name}`, ctx);
  const dockerTar = join(work, `${name}.docker.tar`);
  await dockerd.docker('save', '-o', dockerTar, `corpus-${name}`);
  await skopeoCopy(`docker-archive:${dockerTar}`, `oci:${layouts}/docker:${name}`);
  // buildah
  await buildah('bud', '--network', 'none', '--format', 'docker', '--tls-verify=false', ...args, '-q', '-t', `corpus-${name}`, ctx);
  await buildah('push', '-q', `corpus-${name}`, `oci:${layouts}/buildah:${name}`);
  return {
    berth: await inspectLayout(`${layouts}/berth`, name),
    docker: await inspectLayout(`${layouts}/docker`, name),
    buildah: await inspectLayout(`${layouts}/buildah`, name),
  };
}

const corpus: Record<string, { dockerfile: string; files: Files }> = {
  multistage: {
    dockerfile: `ARG BASE
FROM $BASE AS build
WORKDIR /src
COPY . .
RUN mkdir -p /out/bin && cat a.txt sub/b.txt > /out/joined && chmod 0750 /out/bin && ln -s ../joined /out/bin/link
FROM $BASE AS other
RUN echo other > /other
FROM $BASE
COPY --from=build /out /opt/out
COPY --from=0 /src/sub/b.txt /b-from-index
RUN ln -s /opt/out/joined /joined && rm -rf /tmp
CMD ["cat", "/joined"]
`,
    files: { 'a.txt': 'alpha\n', 'sub/b.txt': 'beta\n' },
  },
  'arg-env': {
    dockerfile: `ARG BASE
ARG V=global
FROM $BASE
ARG V
ARG W=w-default
ENV E1=$V E2="\${W:-x} y" E3=\${UNSET:-fallback} E4=\${V:+set}
ENV V=from-env
RUN echo "$V $W" > /argenv && env | grep -E '^E[0-9]=' | sort > /envs
LABEL a.label="$E1" other=plain
`,
    files: {},
  },
  'copy-edges': {
    dockerfile: `ARG BASE
FROM $BASE
COPY a.txt /dst/
COPY a.txt /renamed.txt
COPY sub /subcontents
COPY *.txt /globbed/
COPY --chown=app:app sub/b.txt /owned/
COPY docs/ /docs/
COPY link-to-dir /via-link
COPY sub/ /tmp/into-existing/
COPY a.txt /etc/passwd.d/
`,
    files: {
      'a.txt': 'a\n',
      'c.txt': 'c\n',
      'sub/b.txt': 'b\n',
      'sub/deeper/d.txt': 'd\n',
      'sub/link': { symlink: 'deeper/d.txt' },
      'docs/keep.md': 'keep\n',
      'docs/drop.md': 'drop\n',
      'docs/x.tmp': 'tmp\n',
      'docs/keep.tmp': 'kept tmp\n',
      'link-to-dir': { symlink: 'sub' },
      '.dockerignore': 'docs/drop*\n**/*.tmp\n!docs/keep.tmp\n',
    },
  },
  'add-archives': {
    dockerfile: `ARG BASE
FROM $BASE
ADD plain.tar /x/plain/
ADD gz.tar.gz /x/gz/
ADD bz.tar.bz2 /x/bz/
ADD xz.tar.xz /x/xz/
ADD notatar.gz /x/
ADD a.txt /x/a.txt
`,
    files: {}, // the archives are made by GNU tar before the build (see the test)
  },
  'user-workdir': {
    dockerfile: `ARG BASE
FROM $BASE
WORKDIR /a
WORKDIR b
WORKDIR ../c
RUN pwd > /pwd.txt && touch made-here
USER app
RUN id -u > /tmp/uid
USER root:root
STOPSIGNAL SIGINT
EXPOSE 80 53/udp
VOLUME /data
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo later
`,
    files: {},
  },
};

/** The entries that differ between two trees, one line each (readable where deepEqual of 300 entries is not). */
function treeDiff(a: Omit<TreeEntry, 'mtime'>[], b: Omit<TreeEntry, 'mtime'>[]): string[] {
  const byPath = (t: Omit<TreeEntry, 'mtime'>[]) => new Map(t.map((e) => [e.path, JSON.stringify(e)]));
  const [ma, mb] = [byPath(a), byPath(b)];
  const out: string[] = [];
  for (const [p, e] of ma) if (mb.get(p) !== e) out.push(`${p}: ${e} | ${mb.get(p) ?? 'absent'}`);
  for (const p of mb.keys()) if (!ma.has(p)) out.push(`${p}: absent | ${mb.get(p)}`);
  return out;
}

/** Archives of one small tree (owners 1:2, a link, a subdirectory) in each compression ADD extracts, and a gzip file that is not a tar. */
async function archives(): Promise<Files> {
  const src = join(work, 'archive-src');
  await writeContext(src, { 'top.txt': 'top\n', 'dir/inner.txt': 'inner\n', 'dir/link': { symlink: 'inner.txt' } });
  await sh('chown', ['-R', '1:2', src]);
  const out = join(work, 'archives');
  await mkdir(out, { recursive: true });
  const tar = (file: string, flag: string[]) => sh('tar', ['--sort=name', ...flag, '-C', src, '-cf', join(out, file), '.']);
  await tar('plain.tar', []);
  await tar('gz.tar.gz', ['-z']);
  await tar('bz.tar.bz2', ['-j']);
  await tar('xz.tar.xz', ['-J']);
  await writeFile(join(out, 'a.txt'), 'not an archive\n');
  await sh('sh', ['-c', `printf 'gzip, not tar\\n' | gzip -n > ${join(out, 'notatar.gz')}`]);
  const { readdir, readFile } = await import('node:fs/promises');
  const files: Files = {};
  for (const f of await readdir(out)) files[f] = await readFile(join(out, f));
  return files;
}

for (const [name, c] of Object.entries(corpus)) {
  test(`corpus ${name}: berth's image has buildah's and docker's files and config`, async () => {
    const r = await buildAll(name, c.dockerfile, name === 'add-archives' ? await archives() : c.files);
    assert.deepEqual(treeDiff(r.berth.tree, r.docker.tree), [], 'berth vs docker: files');
    // buildah 1.28 leaves the mount points of its RUN containers behind (an empty /etc/hostname, /run);
    // and it gives the destination of an extracted ADD archive the archive's root owner, which docker does not.
    const buildahOwn = (e: Omit<TreeEntry, 'mtime'>) =>
      !((e.path === 'etc/hostname' && e.size === 0) || e.path === 'run') || r.berth.tree.some((b) => b.path === e.path);
    const archiveRoots = name === 'add-archives' ? ['x/bz', 'x/gz', 'x/plain', 'x/xz'] : [];
    const buildahDiff = treeDiff(r.berth.tree, r.buildah.tree.filter(buildahOwn)).filter(
      (d) => !archiveRoots.includes(d.split(':')[0] as string),
    );
    assert.deepEqual(buildahDiff, [], 'berth vs buildah: files');
    assert.deepEqual(dockerfileFields(r.berth.config), dockerfileFields(r.docker.config), 'berth vs docker: config');
    assert.deepEqual(dockerfileFields(r.berth.config), dockerfileFields(r.buildah.config), 'berth vs buildah: config');
  });
}

test("images cross over: berth's build runs under dockerd, docker's under berth", async () => {
  // the multistage images of the corpus test above
  await dockerd.docker('load', '-i', join(work, 'multistage.berth.tar'));
  assert.equal(await dockerd.docker('run', '--rm', '--network', 'none', 'corpus/multistage'), 'alpha\nbeta\n');
  const dockerTar = join(work, 'multistage.docker.tar');
  ok(await berth(root, ['load', '-i', dockerTar]), 'berth load');
  const r = ok(await berth(root, ['run', '--rm', '--network', 'none', 'corpus-multistage']), 'berth run');
  assert.equal(r.stdout, 'alpha\nbeta\n');
});
