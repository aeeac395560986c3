// Test support: a corpus of images made by peers and pushed with skopeo to a test registry.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { skopeoCopy, umociImage } from './peers.js';

export interface Corpus {
  /** Repository paths on the registry, by kind. */
  oci: string;
  docker: string;
  zstd: string;
  uncompressed: string;
  multi: string;
}

/**
 * Builds the images with umoci and pushes them with skopeo: OCI gzip (two layers), Docker schema 2,
 * zstd, uncompressed, and a two-platform index (amd64, arm64).
 */
export async function pushCorpus(host: string, work: string): Promise<Corpus> {
  const layout = join(work, 'layout');
  await umociImage(
    layout,
    'base',
    [{ 'etc/hello.txt': 'hello\n', 'data/blob.bin': randomBytes(200_000) }, { 'etc/second.txt': 'second layer\n' }],
    { work },
  );
  const corpus: Corpus = {
    oci: 'corpus/oci:gzip',
    docker: 'corpus/docker:v2s2',
    zstd: 'corpus/zstd:latest',
    uncompressed: 'corpus/raw:latest',
    multi: 'corpus/multi:latest',
  };
  await skopeoCopy(`oci:${layout}:base`, `docker://${host}/${corpus.oci}`);
  await skopeoCopy(`oci:${layout}:base`, `docker://${host}/${corpus.docker}`, ['--format', 'v2s2']);
  const raw = join(work, 'dir-raw');
  await skopeoCopy(`oci:${layout}:base`, `dir:${raw}`, ['--dest-decompress']);
  await skopeoCopy(`dir:${raw}`, `docker://${host}/${corpus.uncompressed}`, ['--preserve-digests']);
  const zstd = join(work, 'dir-zstd');
  await skopeoCopy(`dir:${raw}`, `dir:${zstd}`, ['--dest-compress', '--dest-compress-format', 'zstd']);
  await skopeoCopy(`dir:${zstd}`, `docker://${host}/${corpus.zstd}`, ['--preserve-digests']);
  // Two platforms in one OCI layout, and an index over them that skopeo pushes with --all.
  await umociImage(layout, 'amd64', [{ 'arch.txt': 'amd64\n' }], { arch: 'amd64', work });
  await umociImage(layout, 'arm64', [{ 'arch.txt': 'arm64\n' }], { arch: 'arm64', work });
  const indexPath = join(layout, 'index.json');
  const top = JSON.parse(await readFile(indexPath, 'utf8')) as {
    manifests: { annotations?: Record<string, string>; digest: string; size: number; mediaType: string }[];
  };
  const byTag = (t: string) => top.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === t);
  const entry = (t: string, architecture: string) => {
    const m = byTag(t);
    if (!m) throw new Error(`no ${t} in the layout`);
    return { mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { os: 'linux', architecture } };
  };
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [entry('amd64', 'amd64'), entry('arm64', 'arm64')],
    }),
  );
  const digest = createHash('sha256').update(index).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', digest), index);
  top.manifests.push({
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest: `sha256:${digest}`,
    size: index.length,
    annotations: { 'org.opencontainers.image.ref.name': 'multi' },
  });
  await writeFile(indexPath, JSON.stringify(top));
  await skopeoCopy(`oci:${layout}:multi`, `docker://${host}/${corpus.multi}`, ['--all', '--preserve-digests']);
  return corpus;
}
