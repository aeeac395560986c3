#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError, Option } from 'commander';
import { BerthError, codeOf, exitCodes } from '../errdefs/index.js';
import { registerArchive } from './archive.js';
import { registerBuild } from './build.js';
import { registerContainers } from './container.js';
import { commandSplitting } from './container-flags.js';
import { registerContent } from './content.js';
import { registerDaemon } from './daemon.js';
import { registerDisk } from './disk.js';
import { registerImages } from './images.js';
import { registerNamespace } from './namespace.js';
import { registerNetworks } from './network.js';
import { registerRegistry } from './registry.js';
import { registerSnapshot } from './snapshot.js';
import { registerStore } from './store.js';
import { registerSystem } from './system.js';
import { berthVersion } from './version.js';
import { registerVolumes } from './volume.js';

/** Builds the `berth` command tree. */
export function buildProgram(): Command {
  const program = new Command('berth')
    .description('A container image store and runtime (containerd model, docker verbs)')
    .version(berthVersion, '--version', 'print the version')
    .addOption(new Option('--root <dir>', 'root directory (default: /var/lib/berth as root, else $XDG_DATA_HOME/berth)').env('BERTH_ROOT'))
    .addOption(new Option('-n, --namespace <name>', 'namespace').env('BERTH_NAMESPACE').default('default'))
    .addOption(new Option('--format <format>', 'output format of listings: table or json').default('table'))
    .addOption(
      new Option('--snapshotter <name>', 'snapshotter (default: overlayfs where the kernel supports it, else native)')
        .choices(['overlayfs', 'native'])
        .env('BERTH_SNAPSHOTTER'),
    )
    .option('--debug', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  program.addHelpText('after', '\nExample:\n  $ berth content add ./layer.tar.gz\n  $ berth -n k8s.io content ls --format json\n');
  registerRegistry(program);
  registerImages(program);
  registerNamespace(program);
  registerContent(program);
  registerSnapshot(program);
  registerStore(program);
  registerSystem(program);
  registerContainers(program);
  registerNetworks(program);
  registerVolumes(program);
  registerDisk(program);
  registerArchive(program);
  registerBuild(program);
  registerDaemon(program);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    cmd.showHelpAfterError('(run with --help for usage)');
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

/** One line per error; the stack and causes only with --debug. */
function report(err: unknown, debug: boolean): number {
  if (err instanceof CommanderError) {
    // Commander has printed the message already; usage errors exit 2, help and version 0.
    return err.exitCode === 0 ? 0 : 2;
  }
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`berth: ${message}\n`);
  if (debug) {
    for (let e: unknown = err; e; e = (e as Error).cause) {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      if (!(e instanceof Error)) break;
    }
  }
  if (!(err instanceof BerthError) && code === 'UNKNOWN' && !debug) {
    process.stderr.write('(an unexpected error: run with --debug for details)\n');
  }
  return exitCodes[code];
}

/**
 * docker's rule for `run IMAGE CMD…` and `exec CTR CMD…`: options stop at the first operand, and
 * what follows is the container's command. Commander sees it after a `--` put there.
 */
export function separateContainerCommand(program: Command, argv: string[]): string[] {
  const args = argv.slice(2);
  const takesValue = (cmd: Command, a: string): boolean | undefined => {
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    for (const c of [cmd, program]) {
      const o = c.options.find((o) => o.long === name || o.short === name);
      if (o) return (o.required || o.optional) && !a.includes('=');
    }
    return undefined; // unknown, or combined short flags such as -it
  };
  let i = 0;
  while (i < args.length && (args[i] as string).startsWith('-')) i += takesValue(program, args[i] as string) ? 2 : 1;
  let cmd = program.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i] as string));
  const sub = cmd?.commands.find((c) => c.name() === args[i + 1] || c.aliases().includes(args[i + 1] as string));
  if (sub) {
    cmd = sub;
    i++;
  }
  if (!cmd || !commandSplitting.has(cmd)) return argv;
  for (i++; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return argv;
    if (a.startsWith('-') && a !== '-') {
      if (takesValue(cmd, a) && !/^-[a-zA-Z]./.test(a)) i++;
      continue;
    }
    return [...argv.slice(0, i + 3), '--', ...argv.slice(i + 3)];
  }
  return argv;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(separateContainerCommand(program, argv));
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return report(err, argv.includes('--debug'));
  }
}

// A pull streams about twice the image's size through Buffers while the JavaScript heap stays near
// 10 MB, and V8's default heap growth keeps the old generation's limit so close to that size that
// incremental marking starts again soon after each mark-compact ends: 75-110 full collections in a
// pull (about 1 s of CPU, most of it on helper threads the unpack needs). Letting the heap grow to
// five times what survives takes that to 13-30; that alone holds more dead Buffers between
// collections (peak RSS +20 to +40 MB), which a young generation kept at its first size frees in
// cheap scavenges instead. Measured together: 0.8-1.5 s less user CPU, peak RSS within 8 MB of the
// defaults. The CLI sets them for its own process (and the daemon's); a program that embeds berth
// keeps its own.
setFlagsFromString('--heap-growing-percent=400 --semi-space-growth-factor=1');

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
main(process.argv).then((code) => {
  process.exitCode = code;
});
