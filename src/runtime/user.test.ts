import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { maxUserDbSize, resolveUser } from './user.js';

let rootfs: string;
before(async () => {
  rootfs = await mkdtemp(join(tmpdir(), 'berth-user-'));
  await mkdir(join(rootfs, 'etc'));
  await writeFile(
    join(rootfs, 'etc/passwd'),
    '# comment\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\nweird:x:-1:0::/:/bin/sh\n',
  );
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:app,root\nstaff:x:50:app\napp:x:1000:\n');
});
after(() => rm(rootfs, { recursive: true, force: true }));

describe('resolveUser', () => {
  test('resolveUser by name, uid, uid:gid and name:group, with supplementary groups', () => {
    assert.deepEqual(resolveUser(rootfs, ''), { uid: 0, gid: 0, additionalGids: [10], home: '/root' });
    assert.deepEqual(resolveUser(rootfs, 'app'), { uid: 1000, gid: 1000, additionalGids: [10, 50], home: '/home/app' });
    assert.deepEqual(resolveUser(rootfs, '1000'), { uid: 1000, gid: 1000, additionalGids: [10, 50], home: '/home/app' });
    assert.deepEqual(resolveUser(rootfs, 'app:staff'), { uid: 1000, gid: 50, additionalGids: [], home: '/home/app' });
    assert.deepEqual(resolveUser(rootfs, '4242:77'), { uid: 4242, gid: 77, additionalGids: [], home: '/' });
    assert.deepEqual(resolveUser(rootfs, 'app', ['staff', '99']), {
      uid: 1000,
      gid: 1000,
      additionalGids: [10, 50, 99],
      home: '/home/app',
    });
  });

  test('resolveUser refuses unknown names and malformed specs', () => {
    assert.throws(() => resolveUser(rootfs, 'nobody'), { code: 'NOT_FOUND' });
    assert.throws(() => resolveUser(rootfs, 'app:nogroup'), { code: 'NOT_FOUND' });
    for (const bad of [':', 'a:', ':b', 'a:b:c', '99999999999'])
      assert.throws(() => resolveUser(rootfs, bad), { code: 'INVALID_ARGUMENT' }, bad);
  });

  test('resolveUser reads the files inside the root only and bounds their size', async () => {
    const other = await mkdtemp(join(tmpdir(), 'berth-user-link-'));
    await mkdir(join(other, 'etc'));
    // An absolute symlink is resolved inside the root: /etc/passwd → /etc/real (the root's), never the host's.
    await writeFile(join(other, 'etc/real'), 'svc:x:7:7::/svc:/bin/sh\n');
    await symlink('/etc/real', join(other, 'etc/passwd'));
    assert.equal(resolveUser(other, 'svc').uid, 7);
    assert.throws(() => resolveUser(other, 'root'), { code: 'NOT_FOUND' }, 'the host /etc/passwd was not read');
    await writeFile(join(other, 'etc/group'), Buffer.alloc(maxUserDbSize + 1, 'a'));
    assert.throws(() => resolveUser(other, 'svc'), { code: 'INVALID_ARGUMENT', message: /\/etc\/group: \d+ bytes, larger than/ });
    await rm(other, { recursive: true, force: true });
  });
});
