// Test support: layer tars written by peers (Python's tarfile and GNU tar), assembled into OCI images
// by umoci, covering every entry kind berth must apply.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './peers.js';

/**
 * Python's tarfile writes the hand-made layers: it can put any entry in any order (whiteouts after
 * their siblings, hardlinks onto files of lower layers, hostile names), PAX records included.
 * Each layer is a list of entries; `data` is text or `{hex}`.
 */
const PY_WRITER = `
import json, sys, tarfile, io
spec = json.load(open(sys.argv[1]))
kinds = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'link': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'block': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE}
for out, entries in spec.items():
    with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e['name'])
            ti.type = kinds[e.get('type', 'file')]
            ti.mode = e.get('mode', 0o755 if e.get('type') == 'dir' else 0o644)
            ti.uid = e.get('uid', 0); ti.gid = e.get('gid', 0)
            ti.uname = ''; ti.gname = ''
            ti.mtime = e.get('mtime', 1600000000)
            ti.linkname = e.get('linkname', '')
            ti.devmajor = e.get('major', 0); ti.devminor = e.get('minor', 0)
            pax = {}
            if 'mtimeNs' in e: pax['mtime'] = e['mtimeNs']
            for k, v in e.get('xattrs', {}).items():
                pax['SCHILY.xattr.' + k] = bytes.fromhex(v).decode('utf-8', 'surrogateescape')
            ti.pax_headers = pax
            data = None
            if ti.type == tarfile.REGTYPE:
                d = e.get('data', '')
                data = bytes.fromhex(d['hex']) if isinstance(d, dict) else d.encode()
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

export interface LayerEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** A PAX mtime with nanoseconds, e.g. "1600000000.123456789". */
  mtimeNs?: string;
  linkname?: string;
  major?: number;
  minor?: number;
  /** Values in hex. */
  xattrs?: Record<string, string>;
  data?: string | { hex: string };
}

/** Writes each layer as an uncompressed tar with Python's tarfile; returns the paths. */
export async function writeLayers(work: string, layers: Record<string, LayerEntry[]>): Promise<Record<string, string>> {
  await mkdir(work, { recursive: true });
  const spec: Record<string, LayerEntry[]> = {};
  const paths: Record<string, string> = {};
  for (const [name, entries] of Object.entries(layers)) {
    paths[name] = join(work, `${name}.tar`);
    spec[paths[name]] = entries;
  }
  const specFile = join(work, 'layers.json');
  await writeFile(specFile, JSON.stringify(spec));
  await sh('python3', ['-c', PY_WRITER, specFile]);
  return paths;
}

/** A GNU tar of a directory tree (`--sparse`, `--xattrs`), in `gnu` or `posix` (PAX) format, sorted by name. */
export async function gnuTar(dir: string, out: string, format: 'gnu' | 'posix'): Promise<string> {
  await sh('tar', [
    `--format=${format}`,
    '--sparse',
    '--xattrs',
    '--xattrs-include=*',
    '--sort=name',
    '--numeric-owner',
    '-cf',
    out,
    '-C',
    dir,
    '.',
  ]);
  return out;
}

/** Builds `layout:tag` with umoci from uncompressed layer tars, bottom first (umoci gzips them). */
export async function umociLayers(layout: string, tag: string, layers: string[]): Promise<void> {
  await sh('umoci', ['init', '--layout', layout]).catch(() => '');
  await sh('umoci', ['new', '--image', `${layout}:${tag}`]);
  for (const l of layers) await sh('umoci', ['raw', 'add-layer', '--image', `${layout}:${tag}`, l]);
}

/** Capability sets as security.capability holds them (vfs_cap_data v2): cap_net_raw (13) permitted, effective. */
export const CAP_NET_RAW_HEX = '01000002' + '00200000' + '00000000' + '00000000' + '00000000';

/**
 * The entry-kind corpus: five layers (one made by GNU tar with a sparse file, one empty) that hold
 * every kind of entry, whiteouts (one after its siblings), an opaque directory, a hardlink onto a
 * lower layer's file, symlink chains, long names, xattrs, setuid/setgid/sticky, devices, big ids.
 */
export function entryCorpus(): Record<string, LayerEntry[]> {
  const T = 1600000000;
  return {
    l1: [
      { name: 'bin', type: 'dir', mtime: T },
      { name: 'bin/busybox', mode: 0o4755, data: 'busybox '.repeat(300), mtimeNs: '1600000000.123456789' },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox', mtime: T },
      { name: 'bin/link1', type: 'symlink', linkname: 'sh', mtime: T },
      { name: 'bin/abs', type: 'symlink', linkname: '/etc/passwd', mtime: T },
      { name: 'etc', type: 'dir', mtime: T },
      { name: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n', mtime: T },
      { name: 'etc/hosts-hard', type: 'link', linkname: 'etc/passwd', mtime: T },
      { name: 'etc/to-delete', data: 'bye', mtime: T },
      { name: 'etc/dir-to-delete', type: 'dir', mtime: T },
      { name: 'etc/dir-to-delete/x', data: 'x', mtime: T },
      { name: 'opq', type: 'dir', mtime: T },
      { name: 'opq/old1', data: 'old1', mtime: T },
      { name: 'opq/sub', type: 'dir', mtime: T },
      { name: 'opq/sub/old2', data: 'old2', mtime: T },
      { name: 'shared', type: 'dir', mode: 0o2775, gid: 1000, mtime: T },
      { name: 'shared/old', data: 'old', mtime: T },
      { name: 'tmp', type: 'dir', mode: 0o1777, mtime: T },
      { name: 'big-ids', data: 'ids', uid: 3000000, gid: 4000000, mtime: T },
      { name: 'dev', type: 'dir', mtime: T },
      { name: 'dev/null', type: 'char', major: 1, minor: 3, mode: 0o666, mtime: T },
      { name: 'dev/loop0', type: 'block', major: 7, minor: 0, mode: 0o660, gid: 6, mtime: T },
      { name: 'dev/fifo', type: 'fifo', mode: 0o600, mtime: T },
      { name: 'l', type: 'dir', mtime: T },
      { name: `l/${'a'.repeat(120)}`, type: 'dir', mtime: T },
      { name: `l/${'a'.repeat(120)}/${'b'.repeat(150)}`, type: 'dir', mtime: T },
      { name: `l/${'a'.repeat(120)}/${'b'.repeat(150)}/${'c'.repeat(200)}`, data: 'deep', mtime: T },
      { name: 'l/longlink', type: 'symlink', linkname: `../${'x'.repeat(300)}`, mtime: T },
      { name: 'ünïcödé-名前', data: 'utf8', mtime: T },
      {
        name: 'xattr-file',
        data: 'caps',
        mode: 0o755,
        xattrs: { 'user.comment': Buffer.from('hello').toString('hex'), 'security.capability': CAP_NET_RAW_HEX },
        mtime: T,
      },
      { name: 'hardlinks', type: 'dir', mtime: T },
      { name: 'hardlinks/a', data: 'group', mtime: T },
      { name: 'hardlinks/b', type: 'link', linkname: 'hardlinks/a', mtime: T },
      { name: 'hardlinks/c', type: 'link', linkname: 'hardlinks/a', mtime: T },
    ],
    l2: [
      { name: 'etc', type: 'dir', mtime: T + 100 },
      { name: 'etc/.wh.to-delete', mtime: T + 100 },
      { name: 'etc/.wh.dir-to-delete', mtime: T + 100 },
      { name: 'etc/passwd-hard2', type: 'link', linkname: 'etc/passwd', mtime: T + 100 },
      { name: 'opq', type: 'dir', mtime: T + 100 },
      { name: 'opq/new', data: 'new', mtime: T + 100 },
      { name: 'opq/sub', type: 'dir', mtime: T + 100 },
      { name: 'opq/sub/new2', data: 'new2', mtime: T + 100 },
      // The opaque marker after its siblings: it still hides only what the layers below hold.
      { name: 'opq/.wh..wh..opq', mtime: T + 100 },
      { name: 'bin', type: 'dir', mtime: T + 100 },
      { name: 'bin/busybox', mode: 0o755, data: 'busybox v2', mtimeNs: '1600000100.000000001' },
      { name: 'bin/link1', type: 'dir', mtime: T + 100 },
      { name: 'bin/link1/inside', data: 'was a symlink', mtime: T + 100 },
      { name: 'tmp', type: 'dir', mode: 0o1777, mtime: T + 100 },
      { name: 'tmp/newfile', data: 'tmp', mtimeNs: '1600000100.999999999' },
    ],
    l3: [],
    l4: [
      { name: '.wh.shared', mtime: T + 200 },
      { name: 'shared', type: 'dir', mode: 0o755, mtime: T + 200 },
      { name: 'shared/fresh', data: 'fresh', mtime: T + 200 },
      { name: 'etc', type: 'dir', mode: 0o700, mtime: T + 200 },
      { name: 'hardlinks', type: 'dir', mtime: T + 200 },
      { name: 'hardlinks/.wh.c', mtime: T + 200 },
    ],
  };
}
