import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { berth, fails, ok } from '../testutil/cli.js';
import { type Corpus, pushCorpus } from '../testutil/corpus.js';
import { sh, skopeoCopy, skopeoRaw, umociImage } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

let registry: TestRegistry;
let corpus: Corpus;
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-cli-reg-'));
  registry = await startRegistry();
  corpus = await pushCorpus(registry.host, work);
});
after(async () => {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

const rootFor = async () => join(await mkdtemp(join(work, 'r-')), 'root');

/** docker's unpacked size, counted by GNU tar: the regular files' sizes in every layer of the image. */
async function filesSizeByTar(ref: string): Promise<number> {
  const dir = await mkdtemp(join(work, 'tar-count-'));
  await skopeoCopy(`docker://${ref}`, `dir:${dir}`);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { layers: { digest: string }[] };
  let total = 0;
  for (const l of manifest.layers) {
    const listing = await sh('tar', ['-tvzf', join(dir, l.digest.slice(7))]);
    for (const line of listing.split('\n')) if (line.startsWith('-')) total += Number(line.split(/ +/)[2]);
  }
  return total;
}

describe('cli registry commands', () => {
  test('cli pull, images, image inspect, history, manifest inspect', async () => {
    const root = await rootFor();
    const ref = `${registry.host}/${corpus.oci}`;
    const pulled = ok(await berth(root, ['pull', ref]), 'pull');
    const manifestDigest = sha(await skopeoRaw(`docker://${ref}`, 'manifest'));
    const imageId = sha(await skopeoRaw(`docker://${ref}`, 'config'));
    assert.match(pulled.stdout, new RegExp(`^gzip: Pulling from ${registry.host}/corpus/oci\\n`));
    assert.match(pulled.stdout, new RegExp(`Digest: ${manifestDigest}\\n`));
    assert.match(pulled.stdout, /Status: Downloaded newer image for /);
    assert.match(pulled.stdout, new RegExp(`\\n${ref}\\n$`));
    assert.match(pulled.stderr, /[a-f0-9]{12}: Pull complete\n/);
    const again = ok(await berth(root, ['pull', ref]), 'pull again');
    assert.match(again.stdout, /Status: Image is up to date/);
    assert.match(again.stderr, /Already exists/);
    assert.equal(ok(await berth(root, ['pull', '-q', ref]), 'pull -q').stdout, `${ref}\n`);

    const table = ok(await berth(root, ['images']), 'images').stdout;
    assert.match(table, /^REPOSITORY +TAG +IMAGE ID +CREATED +CONTENT SIZE +UNPACKED SIZE\n/);
    assert.match(table, new RegExp(`${registry.host}/corpus/oci +gzip +${imageId.slice(7, 19)} +.+ago +\\S+ +\\S+\\n`));
    const json = JSON.parse(ok(await berth(root, ['images', '--format', 'json']), 'images json').stdout);
    const manifestBytes = Buffer.from(await skopeoRaw(`docker://${ref}`, 'manifest'));
    const m = JSON.parse(manifestBytes.toString()) as { config: { size: number }; layers: { size: number }[] };
    assert.deepEqual(json[0], {
      name: ref,
      repository: `${registry.host}/corpus/oci`,
      tag: 'gzip',
      digest: manifestDigest,
      id: imageId,
      created: json[0].created,
      contentSize: manifestBytes.length + m.config.size + m.layers.reduce((n, l) => n + l.size, 0),
      unpackedSize: await filesSizeByTar(ref),
    });
    assert.match(ok(await berth(root, ['images', '--digests']), 'digests').stdout, new RegExp(`DIGEST.+\\n.+${manifestDigest}`));
    assert.equal(ok(await berth(root, ['images', '-q']), '-q').stdout, `${imageId.slice(7, 19)}\n`);
    assert.equal(ok(await berth(root, ['images', '-q', '--no-trunc']), '-q --no-trunc').stdout, `${imageId}\n`);

    const inspect = JSON.parse(ok(await berth(root, ['image', 'inspect', ref]), 'inspect').stdout)[0];
    assert.equal(inspect.Id, imageId);
    assert.deepEqual(inspect.RepoTags, [`${registry.host}/corpus/oci:gzip`]);
    assert.deepEqual(inspect.RepoDigests, [`${registry.host}/corpus/oci@${manifestDigest}`]);
    assert.equal(inspect.Os, 'linux');
    assert.equal(inspect.Berth.ManifestDigest, manifestDigest);
    assert.equal(inspect.RootFS.Layers.length, 2);
    assert.equal(inspect.Berth.UnpackedSize, json[0].unpackedSize);
    assert.equal(inspect.Berth.ChainIDs.length, 2);
    assert.equal(inspect.Berth.ChainIDs[0], inspect.RootFS.Layers[0]);
    assert.equal(inspect.Berth.ChainIDs[1], sha(`${inspect.RootFS.Layers[0]} ${inspect.RootFS.Layers[1]}`));
    // by short ID too
    assert.equal(JSON.parse(ok(await berth(root, ['image', 'inspect', imageId.slice(7, 19)]), 'inspect id').stdout)[0].Id, imageId);

    const history = ok(await berth(root, ['image', 'history', ref]), 'history').stdout;
    assert.match(history, /^IMAGE +CREATED +CREATED BY +CONTENT SIZE +COMMENT\n/);
    assert.equal(history.trim().split('\n').length, 3);

    const raw = ok(await berth(root, ['manifest', 'inspect', ref]), 'manifest inspect').stdout;
    assert.equal(raw.replace(/\n$/, ''), manifestBytes.toString().replace(/\n$/, ''));
  });

  test('cli tag, rmi, image filters', async () => {
    const root = await rootFor();
    const ref = `${registry.host}/${corpus.docker}`;
    ok(await berth(root, ['pull', '-q', ref]), 'pull');
    ok(await berth(root, ['pull', '-q', `${registry.host}/${corpus.multi}`]), 'pull multi');
    ok(await berth(root, ['tag', ref, 'mine:1']), 'tag');
    ok(await berth(root, ['image', 'tag', 'mine:1', 'localhost:5000/mine:2']), 'image tag');
    const list = async (filter: string) =>
      (JSON.parse(ok(await berth(root, ['images', '--format', 'json', '--filter', filter]), filter).stdout) as { name: string }[])
        .map((i) => i.name)
        .sort();
    assert.deepEqual(await list('reference=mine'), ['docker.io/library/mine:1']);
    assert.deepEqual(await list('reference=*/mine:2'), ['localhost:5000/mine:2']);
    assert.deepEqual(await list('dangling=true'), []);
    fails(await berth(root, ['images', '--filter', 'color=red']), 2, /invalid filter "color"/);
    const id = ok(await berth(root, ['images', '-q', '--filter', 'reference=mine']), 'id').stdout.trim();
    fails(await berth(root, ['rmi', id]), 5, /must be forced/);
    assert.equal(ok(await berth(root, ['rmi', 'mine:1']), 'rmi').stdout, 'Untagged: mine:1\n');
    const forced = ok(await berth(root, ['rmi', '-f', id]), 'rmi -f').stdout;
    assert.match(forced, /Untagged: localhost:5000\/mine:2\n/);
    assert.match(forced, /Deleted: sha256:[a-f0-9]{64}\n$/);
    fails(await berth(root, ['rmi', 'mine:1']), 3, /No such image: mine:1/);
    assert.deepEqual(await list('reference=mine'), []);
    // -f removed every name of the ID, the pulled one too; the other image stays.
    assert.deepEqual(await list(`reference=${registry.host}/corpus/*`), [`${registry.host}/${corpus.multi}`]);
  });

  test('cli images --filter before= and since= compare creation times', async () => {
    const root = await rootFor();
    const older = `${registry.host}/${corpus.oci}`;
    const newer = `${registry.host}/${corpus.multi}`;
    ok(await berth(root, ['pull', '-q', older]), 'pull older');
    ok(await berth(root, ['pull', '-q', newer]), 'pull newer');
    const names = async (filter: string) =>
      (JSON.parse(ok(await berth(root, ['images', '--format', 'json', '--filter', filter]), filter).stdout) as { name: string }[]).map(
        (i) => i.name,
      );
    assert.deepEqual(await names(`since=${older}`), [newer]);
    assert.deepEqual(await names(`before=${newer}`), [older]);
    fails(await berth(root, ['images', '--filter', 'since=nothing:1']), 3, /No such image: nothing:1/);
  });

  test('cli push: to another repository keeps the image ID and the manifest digest', async () => {
    const root = await rootFor();
    const ref = `${registry.host}/${corpus.zstd}`;
    ok(await berth(root, ['pull', '-q', ref]), 'pull');
    const dest = `${registry.host}/copies/zstd:v9`;
    const pushed = ok(await berth(root, ['push', ref, dest]), 'push');
    const digest = sha(await skopeoRaw(`docker://${ref}`, 'manifest'));
    assert.match(pushed.stdout, new RegExp(`^The push refers to repository \\[${registry.host}/copies/zstd\\]\\n`));
    assert.match(pushed.stdout, new RegExp(`v9: digest: ${digest} size: \\d+\\n$`));
    assert.equal(sha(await skopeoRaw(`docker://${dest}`, 'manifest')), digest);
    assert.equal(sha(await skopeoRaw(`docker://${dest}`, 'config')), sha(await skopeoRaw(`docker://${ref}`, 'config')));
    ok(await berth(root, ['tag', ref, dest]), 'tag');
    assert.equal(ok(await berth(root, ['push', '-q', dest]), 'push -q').stdout, `${digest}\n`);
  });

  test('cli errors: a missing image, a bad reference, an unknown registry answer', async () => {
    const root = await rootFor();
    fails(await berth(root, ['pull', `${registry.host}/corpus/none:1`]), 3, /manifest for ".+corpus\/none:1" not found/);
    fails(await berth(root, ['pull', 'user/App']), 2, /invalid reference "user\/App": repository name must be lowercase/);
    fails(await berth(root, ['pull', 'no-such-host.invalid/app:1']), 6, /no-such-host\.invalid.*ENOTFOUND/);
    fails(await berth(root, ['pull', '--platform', 'linux/nope', `${registry.host}/${corpus.multi}`]), 2, /unknown architecture "nope"/);
    const push = await berth(root, ['push', 'never-pulled:1']);
    fails(push, 3, /^berth: An image does not exist locally with the tag: never-pulled:1$/);
    assert.equal(push.stdout, '');
    fails(await berth(root, ['image', 'inspect', 'nothing']), 3, /No such image: nothing/);
    fails(await berth(root, ['manifest', 'inspect', `${registry.host}/corpus/none:1`]), 3, /not found/);
  });

  test('cli login, pull with stored credentials, logout (htpasswd registry)', async (t) => {
    const reg = await startRegistry({ auth: { kind: 'htpasswd', user: 'carol', password: 'pw1' } });
    t.after(() => reg.stop());
    const layout = join(work, 'auth-layout');
    await umociImage(layout, 'a', [{ 'f.txt': 'f\n' }], { work });
    await skopeoCopy(`oci:${layout}:a`, `docker://${reg.host}/secret/app:1`, ['--dest-creds', 'carol:pw1']);
    const root = await rootFor();
    const env = { DOCKER_CONFIG: join(work, 'docker-config') };
    fails(await berth(root, ['pull', `${reg.host}/secret/app:1`], { env }), 8, /authentication required \(run "berth login/);
    fails(await berth(root, ['login', '-u', 'carol', '-p', 'wrong', reg.host], { env }), 8, /401/);
    assert.equal(
      ok(await berth(root, ['login', '-u', 'carol', '--password-stdin', reg.host], { env, input: 'pw1\n' }), 'login').stdout,
      'Login Succeeded\n',
    );
    const configPath = join(env.DOCKER_CONFIG, 'config.json');
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    assert.equal(JSON.parse(await readFile(configPath, 'utf8')).auths[reg.host].auth, Buffer.from('carol:pw1').toString('base64'));
    ok(await berth(root, ['pull', '-q', `${reg.host}/secret/app:1`], { env }), 'pull with credentials');
    assert.equal(ok(await berth(root, ['logout', reg.host], { env }), 'logout').stdout, `Removing login credentials for ${reg.host}\n`);
    fails(await berth(root, ['logout', reg.host], { env }), 3, /not logged in/);
    fails(await berth(root, ['login', reg.host], { env }), 2, /--username is required/);
  });

  for (const sn of ['overlayfs', 'native']) {
    test(`cli ${sn}: pull --no-unpack, image unpack; snapshot ls, info, usage, tree, rm; image mount, unmount`, async () => {
      const root = await rootFor();
      const ref = `${registry.host}/${corpus.oci}`;
      const run = (args: string[], what: string) => berth(root, ['--snapshotter', sn, ...args]).then((r) => ok(r, what));
      ok(await berth(root, ['--snapshotter', sn, 'pull', '--no-unpack', ref]), 'pull --no-unpack');
      assert.match((await run(['images'], 'images')).stdout, /\S+ +-\n$/, 'not unpacked yet');
      assert.equal((await run(['snapshot', 'ls'], 'ls')).stdout, 'KEY   PARENT   KIND\n');
      assert.match((await run(['image', 'unpack', ref], 'unpack')).stdout, new RegExp(`done: 2 of 2 layers applied \\(${sn}\\)`));
      const inspect = JSON.parse((await run(['image', 'inspect', ref], 'inspect')).stdout)[0];
      const [c1, c2] = inspect.Berth.ChainIDs as string[];
      const ls = JSON.parse((await run(['snapshot', 'ls', '--format', 'json'], 'ls json')).stdout) as {
        name: string;
        parent?: string;
        kind: string;
      }[];
      assert.deepEqual(
        ls.map((s) => [s.name, s.parent ?? null, s.kind]).sort(),
        [
          [c1, null, 'committed'],
          [c2, c1, 'committed'],
        ].sort(),
      );
      const info = JSON.parse((await run(['snapshot', 'info', c2 as string], 'info')).stdout);
      assert.equal(info.parent, c1);
      assert.equal(info.snapshotter, sn);
      assert.equal(info.unpackedSize, 'second layer\n'.length);
      const usage = JSON.parse((await run(['snapshot', 'usage', '--format', 'json'], 'usage')).stdout) as {
        key: string;
        size: number;
        inodes: number;
      }[];
      assert.equal(usage.length, 2);
      assert.ok(usage.every((u) => u.size > 0 && u.inodes > 0));
      const tree = (await run(['snapshot', 'tree'], 'tree')).stdout;
      assert.equal(tree, `${c1}\n\\_ ${c2} [${ref}]\n`);

      // Mount shows the image's files read-only; unmount drops the view.
      const dir = await mkdtemp(join(work, 'mnt-'));
      assert.equal((await run(['image', 'mount', ref, dir], 'mount')).stdout, `${dir}\n`);
      try {
        assert.equal(await readFile(join(dir, 'etc', 'hello.txt'), 'utf8'), 'hello\n');
        assert.equal(await readFile(join(dir, 'etc', 'second.txt'), 'utf8'), 'second layer\n');
        assert.match((await berth(root, ['--snapshotter', sn, 'snapshot', 'ls'])).stdout, new RegExp(`mount:${dir} +${c2} +view`));
        fails(await berth(root, ['--snapshotter', sn, 'snapshot', 'rm', c2 as string]), 5, /builds on it/);
      } finally {
        ok(await berth(root, ['--snapshotter', sn, 'image', 'unmount', dir]), 'unmount');
      }
      assert.equal((await run(['snapshot', 'ls'], 'ls after')).stdout.includes('mount:'), false);
      fails(await berth(root, ['--snapshotter', sn, 'image', 'unmount', dir]), 3, /not mounted by berth image mount/);

      const table = (await run(['images'], 'images')).stdout;
      const unpacked = JSON.parse((await run(['images', '--format', 'json'], 'images json')).stdout)[0].unpackedSize;
      assert.equal(unpacked, 200_000 + 'hello\n'.length + 'second layer\n'.length);
      assert.match(table, /\S+ +200kB\n$/);
      assert.equal((await run(['snapshot', 'rm', c2 as string, c1 as string], 'rm')).stdout, `${c2}\n${c1}\n`);
      assert.equal((await run(['snapshot', 'ls'], 'ls empty')).stdout, 'KEY   PARENT   KIND\n');
    });
  }
});
