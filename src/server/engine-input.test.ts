// Bad input and bad clients against `berth daemon`, over raw HTTP on its socket: each gets a clear
// error, and the daemon goes on answering with its memory bounded.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { berth, ok } from '../testutil/cli.js';
import { daemonFixture } from '../testutil/daemon.js';

const fx = daemonFixture('engine-input', {
  ready: async (f) => {
    ok(await berth(f.root, ['pull', '-q', f.image]), 'pull');
  },
});

interface Answer {
  status: number;
  type: string | undefined;
  body: string;
}

function call(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: fx.daemon.sock, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** docker's error: the status, `Content-Type: application/json` exactly, and `{"message"}` matching. */
function isError(a: Answer, status: number, message: RegExp): void {
  assert.equal(a.status, status, a.body);
  assert.equal(a.type, 'application/json');
  assert.match((JSON.parse(a.body) as { message: string }).message, message);
}

const alive = async () => assert.equal((await call('GET', '/_ping')).body, 'OK');

test('engine API: bad requests get clear errors', async () => {
  isError(await call('POST', '/containers/create', '{"Image": "x",', { 'Content-Type': 'application/json' }), 400, /invalid JSON body/);
  isError(await call('POST', '/containers/create', '[1,2]'), 400, /want an object/);
  isError(await call('POST', '/containers/create', '{}'), 400, /an image is required/);
  isError(await call('POST', '/containers/create', JSON.stringify({ Image: fx.image, Cmd: 'x'.repeat(2 << 20) })), 400, /larger than/);
  isError(await call('POST', '/containers/create', JSON.stringify({ Image: `${fx.registry.host}/absent:1` })), 404, /No such image/);
  isError(await call('POST', '/containers/create', JSON.stringify({ Image: fx.image, Env: 'A=1' })), 400, /Env: want an array/);
  isError(await call('GET', '/v1.99/version'), 400, /client version 1.99 is too new\. Maximum supported API version is 1\.\d+/);
  isError(await call('GET', '/v1.12/version'), 400, /client version 1.12 is too old/);
  isError(await call('GET', '/no/such/endpoint'), 404, /page not found/);
  isError(await call('GET', '/containers/json?filters=%7Bnot-json'), 400, /invalid filters/);
  isError(await call('POST', '/build?version=2'), 501, /BuildKit \(version=2\) is not implemented/);
  isError(await call('POST', '/build', 'not a tar archive at all'), 400, /tar/);
  isError(await call('GET', '/networks/nosuch'), 404, /network nosuch not found/);
  isError(await call('POST', '/networks/create', '{"Name": "bad name"}'), 400, /invalid network name/);
  isError(await call('GET', '/volumes/nosuch'), 404, /no such volume/);
  isError(await call('GET', '/images/search?term=x'), 501, /search is not implemented/);
  for (const name of ['..%2F..%2Fetc%2Fpasswd', '..', 'a%00b', '%2Fetc']) {
    isError(await call('GET', `/containers/${name}/json`), 404, /No such container/);
    isError(await call('DELETE', `/containers/${name}`), 404, /No such container/);
  }
  for (const name of ['../../etc/passwd', 'a%00b', '..']) {
    const a = await call('GET', `/images/${name}/json`);
    assert.ok(a.status === 404 || a.status === 400, `${name}: ${a.status} ${a.body}`);
    assert.equal(a.type, 'application/json');
  }
  isError(await call('GET', '/containers/%zz/json'), 400, /invalid escape/);
  isError(await call('POST', '/containers/create?name=a%2Fb', JSON.stringify({ Image: fx.image })), 400, /name/);
  await alive();
});

test('engine API: a client that goes mid-stream, and an attach client that stops reading', async () => {
  const created = JSON.parse(
    (
      await call(
        'POST',
        '/containers/create?name=noisy',
        JSON.stringify({ Image: fx.image, Cmd: ['sh', '-c', 'yes 0123456789012345678901234567890123456789'] }),
      )
    ).body,
  ) as { Id: string };
  // A hijacked attach that never reads a byte.
  const stuck = connect(fx.daemon.sock);
  stuck.write(
    `POST /containers/${created.Id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
  );
  stuck.pause();
  await sleep(200);
  assert.equal((await call('POST', `/containers/${created.Id}/start`)).status, 204);
  // A follower that leaves after the first bytes.
  await new Promise<void>((resolve) => {
    const req = request({ socketPath: fx.daemon.sock, path: `/containers/${created.Id}/logs?follow=1&stdout=1` }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.end();
  });
  const log = join(fx.root, 'containers', 'default', created.Id, 'container.log');
  const before = statSync(log).size;
  await sleep(4000);
  assert.ok(statSync(log).size > before + (16 << 20), 'conmon keeps writing the log while the attach client is stuck');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${fx.daemon.pid}/status`, 'utf8'))?.[1]) / 1024;
  assert.ok(rss < 200, `daemon RSS ${rss.toFixed(0)} MiB`);
  await alive();
  isError(await call('DELETE', `/containers/${created.Id}`), 409, /container is running/);
  assert.equal((await call('DELETE', `/containers/${created.Id}?force=1`)).status, 204);
  stuck.destroy();
  await alive();
});

test("engine API: exec resize and the start's ConsoleSize set the size of an exec's terminal", async () => {
  const c = JSON.parse((await call('POST', '/containers/create', JSON.stringify({ Image: fx.image, Cmd: ['sleep', '60'] }))).body) as {
    Id: string;
  };
  assert.equal((await call('POST', `/containers/${c.Id}/start`)).status, 204);
  const exec = JSON.parse(
    (
      await call(
        'POST',
        `/containers/${c.Id}/exec`,
        JSON.stringify({ Cmd: ['sh', '-c', 'sleep 1; stty size'], Tty: true, AttachStdout: true }),
      )
    ).body,
  ) as { Id: string };
  const body = JSON.stringify({ Detach: false, Tty: true });
  const sock = connect(fx.daemon.sock);
  let out = '';
  sock.on('data', (d: Buffer) => {
    out += d;
  });
  const closed = new Promise((resolve) => sock.on('close', resolve));
  sock.write(
    `POST /exec/${exec.Id}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  await sleep(400);
  assert.equal((await call('POST', `/exec/${exec.Id}/resize?h=30&w=100`)).status, 200);
  await closed;
  assert.match(out, /^HTTP\/1.1 101 UPGRADED\r\n/);
  assert.match(out, /\r\n\r\n30 100\r?\n$/);
  // the size the start gives (API 1.42's ConsoleSize, what the docker CLI sends) is there from the first instant
  const sized = JSON.parse(
    (await call('POST', `/containers/${c.Id}/exec`, JSON.stringify({ Cmd: ['stty', 'size'], Tty: true, AttachStdout: true }))).body,
  ) as { Id: string };
  const started = await call('POST', `/exec/${sized.Id}/start`, JSON.stringify({ Detach: false, Tty: true, ConsoleSize: [25, 70] }));
  assert.match(started.body, /^25 70\r?\n$/);
  assert.equal((await call('DELETE', `/containers/${c.Id}?force=1`)).status, 204);
});

test('engine API: archive paths stay inside the container', async () => {
  const c = JSON.parse((await call('POST', '/containers/create', JSON.stringify({ Image: fx.image, Cmd: ['true'] }))).body) as {
    Id: string;
  };
  const out = await call('GET', `/containers/${c.Id}/archive?path=${encodeURIComponent('/../../../../etc/passwd')}`);
  assert.equal(out.status, 200);
  assert.match(out.body, /app:x:1000:1000:app user/, "the image's /etc/passwd, not the host's");
  isError(await call('GET', `/containers/${c.Id}/archive?path=relative`), 400, /must be absolute/);
  assert.equal((await call('HEAD', `/containers/${c.Id}/archive?path=/nope`)).status, 404);
  assert.equal((await call('DELETE', `/containers/${c.Id}`)).status, 204);
});
