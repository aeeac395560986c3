import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveInRoot } from './rootfs-path.js';

test('resolveInRoot follows symlinks as the container would and never leaves the root', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-rootfs-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc/file'), 'x');
  await symlink('/', join(root, 'escape'));
  await symlink('../../../../..', join(root, 'up'));
  await symlink('/etc', join(root, 'etclink'));
  await symlink('loop2', join(root, 'loop1'));
  await symlink('loop1', join(root, 'loop2'));
  assert.equal(resolveInRoot(root, '/escape/etc/file'), join(root, 'etc/file'));
  assert.equal(resolveInRoot(root, '/up/up/etc'), join(root, 'etc'));
  assert.equal(resolveInRoot(root, '../../..'), root);
  assert.equal(resolveInRoot(root, '/etclink/new/dir', { mkdir: true }), join(root, 'etc/new/dir'));
  assert.ok((await stat(join(root, 'etc/new/dir'))).isDirectory());
  assert.throws(() => resolveInRoot(root, '/etc/file/sub'), { code: 'INVALID_ARGUMENT', message: /not a directory/ });
  assert.throws(() => resolveInRoot(root, '/loop1/x'), { code: 'INVALID_ARGUMENT', message: /too many levels/ });
  const outside = join(tmpdir(), `berth-never-${process.pid}`);
  resolveInRoot(root, `/escape${outside}`, { mkdir: true });
  await assert.rejects(stat(outside), { code: 'ENOENT' });
});
