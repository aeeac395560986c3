// The same docker CLI commands against berth's daemon and a private dockerd (Debian's 20.10): the
// exit codes and outputs must be the same, which shows the other daemon tests describe docker's
// behaviour, not berth's.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonFixture, dockerCli, dockerClis } from '../testutil/daemon.js';
import { type Dockerd, startDockerd } from '../testutil/dockerd.js';

let dockerd: Dockerd;
const fx = daemonFixture('parity', {
  ready: async (f) => {
    const d = await startDockerd(join(f.work, 'dockerd'));
    if ('unavailable' in d) throw new Error(d.unavailable);
    dockerd = d;
  },
});

after(async () => {
  await dockerd?.stop();
});

/** What a user sees of each step: its exit code and output. */
async function transcript(host: string, runArgs: string[]): Promise<string[]> {
  const out: string[] = [];
  const docker = async (args: string[], input?: string) => {
    const r = await dockerCli(dockerClis['docker 28'], host, args, input === undefined ? {} : { input });
    out.push(`${args[0]} ${r.code} ${JSON.stringify(r.stdout)}`);
    return r;
  };
  const note = join(fx.work, 'note.txt');
  await writeFile(note, 'from the host\n');
  await docker(['pull', '-q', fx.image]);
  await docker(['run', '--rm', ...runArgs, fx.image, 'echo', 'hi']);
  await docker(['run', '--rm', ...runArgs, fx.image, 'sh', '-c', 'echo out; exit 3']);
  await docker(['run', '-i', '--rm', ...runArgs, fx.image, 'cat'], 'input-data\n');
  await docker(['run', '-d', '--name', 'par', ...runArgs, fx.image, 'sh', '-c', 'echo started; exec sleep 300']).then((r) => {
    out.pop(); // the ID differs
    out.push(`run -d ${r.code}`);
  });
  for (let i = 0; i < 50; i++) {
    const r = await dockerCli(dockerClis['docker 28'], host, ['logs', 'par']);
    if (r.stdout === 'started\n') break;
    await sleep(100);
  }
  await docker(['logs', 'par']);
  await docker(['exec', 'par', 'sh', '-c', 'echo in-exec; exit 4']);
  await docker(['exec', '-i', 'par', 'cat'], 'to-exec\n');
  await docker(['cp', note, 'par:/tmp/']);
  await docker(['exec', 'par', 'cat', '/tmp/note.txt']);
  await docker(['pause', 'par']);
  await docker(['inspect', '--format', '{{.State.Status}} {{.State.Paused}}', 'par']);
  await docker(['unpause', 'par']);
  await docker(['stop', '-t', '1', 'par']);
  await docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}', 'par']);
  await docker(['cp', 'par:/tmp/note.txt', '-']).then(() => {
    out.pop(); // a tar stream: its bytes (times, owners) are not compared
  });
  await docker(['rm', 'par']);
  await docker(['rm', 'par']);
  await docker(['image', 'inspect', '--format', '{{.Id}} {{.Os}} {{.Architecture}}', fx.image]);
  return out;
}

test('the docker CLI sees the same from berth daemon as from dockerd', async () => {
  const fromBerth = await transcript(fx.daemon.host, []);
  // The private dockerd runs without its bridge network.
  const fromDockerd = await transcript(`unix://${dockerd.sock}`, ['--network', 'none']);
  await dockerd.stop();
  assert.deepEqual(fromBerth, fromDockerd);
});
