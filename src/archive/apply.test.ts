import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { digestOf } from '../oci/index.js';
import { mountAll, unmount } from '../snapshots/index.js';
import { xattr } from '../sys/index.js';
import { describeTree } from '../testutil/tree.js';
import { applyLayer, type EntryType, encodeHeader, readTar, TAR_END, type TarHeader, tarPadding } from './index.js';

const run = promisify(execFile);
let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-apply-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface E {
  name: string;
  type?: EntryType;
  data?: string;
  linkname?: string;
  mode?: number;
  xattrs?: Record<string, string>;
}

/** A layer tar from entries, through berth's own writer. */
function tarOf(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const type = e.type ?? 'file';
    const h: TarHeader = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: 0,
      gid: 0,
      size: type === 'file' ? data.length : 0,
      mtime: { sec: 1600000000, nsec: 0 },
      linkname: e.linkname ?? '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(Object.entries(e.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
    };
    parts.push(encodeHeader(h));
    if (type === 'file') parts.push(data, tarPadding(data.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

async function* chunks(b: Buffer, size = 700): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

type Mode = 'remove' | 'overlay';

/**
 * Applies layers bottom first. `remove`: all into one root. `overlay`: each into its own directory
 * with the ones below as lowers; the merged tree is then mounted at `root` by the kernel.
 */
async function applyStack(box: string, mode: Mode, layers: Buffer[]): Promise<{ root: string; done: () => Promise<void> }> {
  const root = join(box, 'root');
  await mkdir(root, { recursive: true });
  if (mode === 'remove') {
    for (const l of layers) await applyLayer(root, chunks(l), { whiteouts: 'remove' });
    return { root, done: async () => {} };
  }
  const dirs: string[] = [];
  for (const [i, l] of layers.entries()) {
    const dir = join(box, `layer${i}`);
    await mkdir(dir);
    const lowers = [...dirs].reverse();
    await applyLayer(dir, chunks(l), { whiteouts: 'overlay', ...(i > 0 ? { lowers: async () => lowers } : {}) });
    dirs.push(dir);
  }
  const lower = [...dirs].reverse();
  if (lower.length === 1) await mountAll([{ type: 'bind', source: lower[0] as string, options: ['ro'] }], root);
  else await mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower.join(':')}`] }], root);
  return { root, done: () => unmount(root) };
}

describe('tar', () => {
  test('tar berth writes what GNU tar lists, and reads back what it wrote', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(130)}`;
    const entries: E[] = [
      { name: 'dir', type: 'dir', mode: 0o2755 },
      { name: 'dir/file', data: 'hello', mode: 0o4755, xattrs: { 'user.k': 'v' } },
      { name: long, data: 'long name' },
      { name: 'sym', type: 'symlink', linkname: 'x'.repeat(150) },
      { name: 'hard', type: 'link', linkname: 'dir/file' },
      { name: 'ünï', data: 'utf-8' },
    ];
    const tar = tarOf(entries);
    const path = join(work, 'w.tar');
    await writeFile(path, tar);
    const { stdout } = await run('tar', ['-tf', path]);
    assert.deepEqual(stdout.trim().split('\n'), ['dir/', 'dir/file', long, 'sym', 'hard', 'ünï']);
    const back: [string, string, string][] = [];
    for await (const e of readTar(chunks(tar, 333))) {
      let data = '';
      for await (const c of e.body()) data += Buffer.from(c).toString();
      back.push([e.header.name, e.header.type, data || e.header.linkname]);
    }
    assert.deepEqual(back, [
      ['dir/', 'dir', ''],
      ['dir/file', 'file', 'hello'],
      [long, 'file', 'long name'],
      ['sym', 'symlink', 'x'.repeat(150)],
      ['hard', 'link', 'dir/file'],
      ['ünï', 'file', 'utf-8'],
    ]);
  });

  test('tar reader refuses a corrupt header with InvalidArgument', async () => {
    const tar = tarOf([{ name: 'a', data: 'x' }]);
    tar[10] = 0x41; // breaks the checksum
    await assert.rejects(
      (async () => {
        for await (const _ of readTar(chunks(tar))) {
          // nothing
        }
      })(),
      { code: 'INVALID_ARGUMENT', message: /checksum/ },
    );
  });

  // Python's tarfile writes the archive (PAX, two zero blocks, padded to a 10 KiB record); the
  // script prints where the last member's header, PAX header and data start and end.
  const pythonTar = `
import io, json, sys, tarfile
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
    def add(name, data=None):
        i = tarfile.TarInfo(name); i.mtime = 1600000000
        if data is None: i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
        else: i.size = len(data); i.mode = 0o644; t.addfile(i, io.BytesIO(data))
    add('d'); add('d/first', b'f' * 1000); add('d/' + 'n' * 120, b'long name' * 10)
last = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getmembers()[-1]
open(sys.argv[1], 'wb').write(buf.getvalue())
print(json.dumps({'header': last.offset, 'data': last.offset_data, 'end': last.offset_data + last.size}))
`;
  async function pythonFraming(): Promise<{ tar: Buffer; header: number; data: number; end: number }> {
    const file = join(work, 'python.tar');
    const { stdout } = await run('python3', ['-c', pythonTar, file]);
    return { tar: await readFile(file), ...(JSON.parse(stdout) as { header: number; data: number; end: number }) };
  }
  const longName = `d/${'n'.repeat(120)}`;

  test("tar reader accepts every framing Go's reader accepts, and the diffID covers every byte", async () => {
    const { tar, end } = await pythonFraming();
    const pad = end + tarPadding(end).length;
    assert.equal(tar.length % 10240, 0);
    const framings: [string, Buffer][] = [
      ['as written', tar],
      ['no padding after the last entry (umoci insert --opaque)', tar.subarray(0, end)],
      ['padding cut short', tar.subarray(0, end + 100)],
      ['no end marker', tar.subarray(0, pad)],
      ['a single zero block', tar.subarray(0, pad + 512)],
      ['data after the end marker', Buffer.concat([tar, Buffer.from('trailing garbage, not a header')])],
    ];
    for (const [what, bytes] of framings) {
      const root = await mkdtemp(join(work, 'framing-'));
      const r = await applyLayer(root, chunks(bytes), { whiteouts: 'remove' });
      assert.equal(r.diffID, digestOf(bytes), what);
      assert.equal(r.tarSize, bytes.length, what);
      assert.equal(await readFile(join(root, 'd/first'), 'utf8'), 'f'.repeat(1000), what);
      assert.equal(await readFile(join(root, longName), 'utf8'), 'long name'.repeat(10), what);
    }
  });

  test("tar reader refuses an archive cut inside a header or an entry's data, saying where", async () => {
    const { tar, header, data, end } = await pythonFraming();
    const cuts: [string, number, RegExp][] = [
      ['inside the data', end - 1, new RegExp(`inside the data of "${longName}"`)],
      ['inside the PAX header', header + 512 + 10, /inside an extended header/],
      ['inside the header', data - 100, /inside a header/],
      ['inside the first zero block', end + tarPadding(end).length + 100, /inside a header/],
    ];
    for (const [what, at, message] of cuts) {
      await assert.rejects(
        applyLayer(await mkdtemp(join(work, 'trunc-')), chunks(tar.subarray(0, at)), { whiteouts: 'remove' }),
        {
          code: 'INVALID_ARGUMENT',
          message,
        },
        what,
      );
    }
  });

  test('tar reader reads GNU base-256 numbers (ids past the octal range)', async () => {
    const block = Buffer.from(tarOf([{ name: 'big', data: '' }]).subarray(0, 512));
    const uid = 5_000_000_000;
    block.fill(0, 108, 116);
    block[108] = 0x80;
    block.writeUIntBE(uid, 110, 6);
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of block) sum += c;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    for await (const e of readTar(chunks(Buffer.concat([block, TAR_END])))) assert.equal(e.header.uid, uid);
  });

  test('tar reader: octal fields padded with spaces or NULs, cut at a NUL; junk is refused', async () => {
    const withUid = (field: string) => {
      const block = Buffer.from(tarOf([{ name: 'f', data: '' }]).subarray(0, 512));
      block.fill(0, 108, 116);
      block.write(field, 108, 8, 'latin1');
      block.fill(0x20, 148, 156);
      let sum = 0;
      for (const c of block) sum += c;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
      return Buffer.concat([block, TAR_END]);
    };
    const uidOf = async (field: string) => {
      for await (const e of readTar(chunks(withUid(field)))) return e.header.uid;
    };
    for (const [field, uid] of [
      ['0001750\0', 1000],
      ['   1750 ', 1000],
      ['\x00\x001750 \x00', 1000],
      ['1750\0x9z', 1000],
      ['\0\0\0\0\0\0\0\0', 0],
    ] as const)
      assert.equal(await uidOf(field), uid, JSON.stringify(field));
    for (const field of ['17 50', '1750 x', '1758', 'abc']) await assert.rejects(uidOf(field), /bad uid field/, JSON.stringify(field));
  });

  test('tar reader keeps a PAX xattr value byte for byte', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const h: TarHeader = {
      name: 'f',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: { sec: -2, nsec: 500000000 },
      linkname: '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: new Map([['security.capability', cap]]),
    };
    for await (const e of readTar(chunks(Buffer.concat([encodeHeader(h), TAR_END])))) {
      assert.deepEqual(e.header.xattrs.get('security.capability'), cap);
      assert.deepEqual(e.header.mtime, { sec: -2, nsec: 500000000 });
    }
  });
});

describe('apply', () => {
  test('apply returns the diffID (sha256 of the whole uncompressed tar) and the files size', async () => {
    const tar = tarOf([
      { name: 'a', data: 'abc' },
      { name: 'd', type: 'dir' },
      { name: 'd/b', data: 'hello' },
    ]);
    const r = await applyLayer(await mkdtemp(join(work, 'id-')), chunks(tar), { whiteouts: 'remove' });
    assert.equal(r.diffID, digestOf(tar));
    assert.equal(r.tarSize, tar.length);
    assert.equal(r.unpackedSize, 8);
  });

  test('apply refuses invalid whiteout markers', async () => {
    for (const name of ['.wh.', 'd/.wh..', 'd/.wh...']) {
      const tar = tarOf([{ name: 'd', type: 'dir' }, { name }]);
      await assert.rejects(applyLayer(await mkdtemp(join(work, 'wh-')), chunks(tar), { whiteouts: 'remove' }), {
        code: 'INVALID_ARGUMENT',
        message: new RegExp(`"${name.replace(/\./g, '\\.')}"`),
      });
    }
  });

  test('apply drops trusted.overlay.* xattrs from a layer', async () => {
    const root = await mkdtemp(join(work, 'xa-'));
    await applyLayer(root, chunks(tarOf([{ name: 'd', type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y', 'user.ok': '1' } }])), {
      whiteouts: 'overlay',
    });
    assert.equal(xattr.get(join(root, 'd'), 'trusted.overlay.opaque'), undefined);
    assert.equal(xattr.get(join(root, 'd'), 'user.ok')?.toString(), '1');
  });

  test('apply overlay: a directory copied up from an opaque lower one does not hide that layer', async () => {
    const box = await mkdtemp(join(work, 'opq-'));
    const { root, done } = await applyStack(box, 'overlay', [
      tarOf([
        { name: 'd', type: 'dir' },
        { name: 'd/keep', data: 'bottom' },
      ]),
      tarOf([
        { name: 'd/.wh..wh..opq', data: '' },
        { name: 'd/mid', data: 'middle' },
      ]),
      tarOf([{ name: 'd/sub/new', data: 'top' }]),
    ]);
    try {
      assert.deepEqual((await readdir(join(root, 'd'))).sort(), ['mid', 'sub']);
    } finally {
      await done();
    }
  });

  // Each case: layers (bottom first); `rejects` names the entry that must fail the apply. Either
  // way, nothing outside the root may change.
  const hostile: { name: string; layers: E[][]; rejects?: string }[] = [
    { name: 'dot-dot path', layers: [[{ name: '../outside/secret', data: 'pwned' }]], rejects: '../outside/secret' },
    { name: 'dot-dot inside a path', layers: [[{ name: 'a/../../outside/x', data: 'pwned' }]], rejects: 'a/../../outside/x' },
    { name: 'absolute path', layers: [[{ name: '/outside/secret', data: 'pwned' }]], rejects: '/outside/secret' },
    {
      name: 'symlink to / then a write through it (same layer)',
      layers: [
        [
          { name: 'evil', type: 'symlink', linkname: '/' },
          { name: 'evil/outside/secret', data: 'pwned' },
        ],
      ],
    },
    {
      name: 'symlink to .. then a write through it (same layer)',
      layers: [
        [
          { name: 'evil', type: 'symlink', linkname: '../..' },
          { name: 'evil/outside/secret', data: 'pwned' },
        ],
      ],
    },
    {
      name: 'symlink planted by one layer, written through by the next',
      layers: [[{ name: 'evil', type: 'symlink', linkname: '../outside' }], [{ name: 'evil/secret', data: 'pwned' }]],
    },
    {
      name: 'symlink chain to outside, written through',
      layers: [
        [
          { name: 'a', type: 'symlink', linkname: 'b' },
          { name: 'b', type: 'symlink', linkname: '../../outside' },
        ],
        [{ name: 'a/secret', data: 'pwned' }],
      ],
    },
    { name: 'hardlink to outside', layers: [[{ name: 'h', type: 'link', linkname: '../outside/secret' }]], rejects: 'h' },
    {
      name: 'hardlink through a symlink to outside',
      layers: [[{ name: 'evil', type: 'symlink', linkname: '../outside' }], [{ name: 'h', type: 'link', linkname: 'evil/secret' }]],
      rejects: 'h',
    },
    { name: 'whiteout that climbs out', layers: [[{ name: '../outside/.wh.secret' }]], rejects: '../outside/.wh.secret' },
    {
      name: 'whiteout through a symlink to outside',
      layers: [[{ name: 'evil', type: 'symlink', linkname: '../outside' }], [{ name: 'evil/.wh.secret' }]],
    },
    {
      name: 'opaque marker through a symlink to outside',
      layers: [[{ name: 'evil', type: 'symlink', linkname: '/../outside' }], [{ name: 'evil/.wh..wh..opq' }]],
    },
    {
      name: 'chmod through a symlink (directory entry)',
      layers: [[{ name: 's', type: 'symlink', linkname: '../outside/secret' }], [{ name: 's', type: 'dir', mode: 0o777 }]],
    },
    {
      name: 'chmod through a symlink (file entry)',
      layers: [[{ name: 's', type: 'symlink', linkname: '/../outside/secret' }], [{ name: 's', data: 'x', mode: 0o777 }]],
    },
    {
      name: 'hardlink to a symlink that points outside',
      layers: [
        [
          { name: 's', type: 'symlink', linkname: '../outside/secret' },
          { name: 'h', type: 'link', linkname: 's' },
        ],
      ],
    },
  ];

  for (const mode of ['remove', 'overlay'] as const) {
    for (const c of hostile) {
      test(`apply ${mode}: ${c.name} is ${c.rejects ? 'rejected' : 'confined'}`, async () => {
        const box = await mkdtemp(join(work, 'box-'));
        // The root sits two levels down, so ../outside and ../../outside both exist around it.
        const cage = join(box, 'cage');
        await mkdir(join(box, 'outside'), { recursive: true });
        await mkdir(join(cage, 'outside'), { recursive: true });
        await writeFile(join(box, 'outside', 'secret'), 'secret');
        await writeFile(join(cage, 'outside', 'secret'), 'secret');
        const before = JSON.stringify(await describeTree(box));
        const stack = applyStack(cage, mode, c.layers.map(tarOf));
        if (c.rejects) {
          await assert.rejects(stack, (err: Error & { code?: string }) => {
            assert.equal(err.code, 'INVALID_ARGUMENT');
            assert.ok(err.message.includes(`"${c.rejects}"`), err.message);
            return true;
          });
        } else {
          const { done } = await stack;
          await done();
        }
        // The root and the layer directories are the apply's to change (and so is their parent's time).
        const mine = (e: { path: string }) => e.path === 'cage' || e.path.startsWith('cage/root') || /^cage\/layer\d/.test(e.path);
        const afterTree = (await describeTree(box)).filter((e) => !mine(e));
        const beforeTree = (JSON.parse(before) as { path: string }[]).filter((e) => !mine(e));
        assert.deepEqual(afterTree, beforeTree);
        assert.equal(await readFile(join(box, 'outside', 'secret'), 'utf8'), 'secret');
      });
    }
  }
});

// ---- Property: berth's apply agrees with a plain in-memory model of the OCI layer rules ----

type ModelNode = { type: 'dir' } | { type: 'file'; data: string } | { type: 'symlink'; target: string };
type Op =
  | { kind: 'file'; path: string; data: string }
  | { kind: 'dir'; path: string }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'whiteout'; path: string }
  | { kind: 'opaque'; path: string };

const pathArb = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), path: pathArb, data: fc.constantFrom('1', '22', '333') }),
  fc.record({ kind: fc.constant('dir' as const), path: pathArb }),
  fc.record({ kind: fc.constant('symlink' as const), path: pathArb, target: fc.constantFrom('x', '../y', '/z') }),
  fc.record({ kind: fc.constant('whiteout' as const), path: pathArb }),
  fc.record({ kind: fc.constant('opaque' as const), path: pathArb }),
);

/** Turns ops into a well-formed layer (parents listed as directories first) and applies it to the model. */
function layerFromOps(model: Map<string, ModelNode>, ops: Op[]): E[] {
  const entries: E[] = [];
  const written = new Set<string>();
  const opaque: string[] = [];
  const removeTree = (p: string, keep: (q: string) => boolean) => {
    for (const q of [...model.keys()]) if ((q === p || q.startsWith(`${p}/`)) && !keep(q)) model.delete(q);
  };
  const put = (p: string, node: ModelNode, e: E) => {
    if (!(node.type === 'dir' && model.get(p)?.type === 'dir')) removeTree(p, () => false);
    model.set(p, node);
    written.add(p);
    entries.push(e);
  };
  const parents = (p: string) => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const q = parts.slice(0, i).join('/');
      if (!(written.has(q) && model.get(q)?.type === 'dir')) put(q, { type: 'dir' }, { name: q, type: 'dir' });
    }
  };
  for (const op of ops) {
    parents(op.path);
    const base = op.path.split('/').pop() as string;
    const dir = op.path.slice(0, -base.length);
    if (op.kind === 'file') put(op.path, { type: 'file', data: op.data }, { name: op.path, data: op.data });
    else if (op.kind === 'dir') put(op.path, { type: 'dir' }, { name: op.path, type: 'dir' });
    else if (op.kind === 'symlink')
      put(op.path, { type: 'symlink', target: op.target }, { name: op.path, type: 'symlink', linkname: op.target });
    else if (op.kind === 'whiteout') {
      entries.push({ name: `${dir}.wh.${base}` });
      // A whiteout hides only what the layers below hold: this layer's own entries stay.
      if (!written.has(op.path)) removeTree(op.path, (q) => [...written].some((w) => w === q || w.startsWith(`${q}/`)));
    } else {
      put(op.path, { type: 'dir' }, { name: op.path, type: 'dir' });
      entries.push({ name: `${op.path}/.wh..wh..opq` });
      opaque.push(op.path);
    }
  }
  for (const d of opaque)
    if (model.get(d)?.type === 'dir') removeTree(d, (q) => q === d || [...written].some((w) => w === q || w.startsWith(`${q}/`)));
  return entries;
}

async function readTree(root: string): Promise<string[]> {
  return (await describeTree(root)).map(
    (e) => `${e.path} ${e.type}${e.link ? ` -> ${e.link}` : ''}${e.size !== undefined ? ` ${e.size}` : ''}`,
  );
}

for (const mode of ['remove', 'overlay'] as const) {
  test(`apply ${mode}: random layer stacks give the tree of the reference model`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 8 }), { minLength: 1, maxLength: 4 }), async (layerOps) => {
        const model = new Map<string, ModelNode>();
        const layers = layerOps.map((ops) => tarOf(layerFromOps(model, ops)));
        const box = await mkdtemp(join(work, 'prop-'));
        const { root, done } = await applyStack(box, mode, layers);
        try {
          const want = [...model.entries()]
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(
              ([p, n]) => `${p} ${n.type}${n.type === 'symlink' ? ` -> ${n.target}` : ''}${n.type === 'file' ? ` ${n.data.length}` : ''}`,
            );
          assert.deepEqual(await readTree(root), want);
        } finally {
          await done();
          await rm(box, { recursive: true, force: true });
        }
      }),
      { numRuns: Number(process.env.BERTH_PROPERTY_RUNS ?? 60) },
    );
  });
}
