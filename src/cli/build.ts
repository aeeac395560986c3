import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { isTarArchive } from '../archive/index.js';
import { build, contextDockerfile, extractArchive, freshDir, shortId } from '../build/index.js';
import { csvFields } from '../dockerfile/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { familiarString, formatReference, parsePlatform, parseReference } from '../oci/index.js';
import { type Berth, buildHost, pruneBuildCache } from '../services/index.js';
import { BuildView } from './build-view.js';
import { example, type Globals, withBerth } from './context.js';
import { collect, confirm, humanSize, parseKeyValues, printJSON, pruneOptions } from './output.js';
import { imageFor } from './registry.js';

interface BuildFlags {
  tag?: string[];
  file?: string;
  buildArg?: string[];
  target?: string;
  platform?: string;
  cache: boolean;
  pull?: boolean;
  label?: string[];
  quiet?: boolean;
  iidfile?: string;
  secret?: string[];
  network?: string;
  reproducible: boolean;
}

/** `--build-arg K=V`, or `K` alone for the caller's environment variable (dropped when unset), as docker does. */
function buildArgs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new InvalidArgumentError(`invalid --build-arg "${a}"`);
    if (eq > 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else if (process.env[a] !== undefined) out[a] = process.env[a] as string;
  }
  return out;
}

/** `--secret id=X,src=FILE` (or `env=VAR`, kept in a file of the build's own). */
async function secrets(list: string[], dir: () => Promise<string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const spec of list) {
    const f = new Map(csvFields(spec));
    const id = f.get('id');
    const src = f.get('src') ?? f.get('source');
    const env = f.get('env');
    if (!id) throw new InvalidArgumentError(`invalid --secret "${spec}": want id=ID,src=FILE`);
    if (src) out[id] = resolve(src);
    else if (env !== undefined || process.env[id] !== undefined) {
      const file = join(await dir(), `secret-${Object.keys(out).length}`);
      await writeFile(file, process.env[env ?? id] ?? '', { mode: 0o600 });
      out[id] = file;
    } else throw new InvalidArgumentError(`invalid --secret "${spec}": want src=FILE or env=VAR`);
  }
  return out;
}

async function runBuild(b: Berth, g: Globals, contextArg: string, flags: BuildFlags): Promise<void> {
  const tags = (flags.tag ?? []).map((t) => formatReference(parseReference(t)));
  let scratchDir: string | undefined;
  const scratch = async () => (scratchDir ??= await freshDir(join(b.root, 'build', 'tmp'), 'ctx'));
  try {
    let contextDir: string;
    let dockerfile: string | undefined;
    if (flags.file === '-') dockerfile = readFileSync(0, 'utf8');
    if (contextArg === '-') {
      // stdin: a context archive, or a Dockerfile with no context (docker build - < Dockerfile)
      const file = join(await scratch(), 'stdin');
      await pipeline(process.stdin, createWriteStream(file));
      contextDir = join(await scratch(), 'context');
      if (await isTarArchive(file)) {
        mkdirSync(contextDir);
        await extractArchive(createReadStream(file), contextDir);
        dockerfile ??= contextDockerfile(contextDir, flags.file ?? 'Dockerfile');
      } else {
        mkdirSync(contextDir);
        dockerfile = readFileSync(file, 'utf8');
      }
    } else {
      contextDir = resolve(contextArg);
      if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
        throw new InvalidArgumentError(`unable to prepare context: path "${contextArg}" not found`);
      }
      if (dockerfile === undefined) {
        const path = flags.file ? resolve(flags.file) : join(contextDir, 'Dockerfile');
        try {
          dockerfile = readFileSync(path, 'utf8');
        } catch (err) {
          throw new InvalidArgumentError(`Cannot locate specified Dockerfile: ${flags.file ?? 'Dockerfile'}`, { cause: err });
        }
      }
    }
    const args = buildArgs(flags.buildArg ?? []);
    // The environment's SOURCE_DATE_EPOCH; a build arg of that name wins (the builder reads it).
    const envEpoch = process.env.SOURCE_DATE_EPOCH;
    if (envEpoch !== undefined && !/^\d+$/.test(envEpoch)) throw new InvalidArgumentError(`invalid SOURCE_DATE_EPOCH "${envEpoch}"`);
    const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
    const view = new BuildView({ quiet: flags.quiet ?? false });
    const host = buildHost(b, g.namespace, (ref, o) =>
      imageFor(b, g, ref, o.pull ? 'always' : 'missing', o.platform ? { platform: o.platform } : {}),
    );
    let result: Awaited<ReturnType<typeof build>>;
    try {
      result = await build(host, {
        contextDir,
        dockerfile,
        tags,
        buildArgs: args,
        ...(flags.target ? { target: flags.target } : {}),
        ...(platform ? { platform } : {}),
        noCache: !flags.cache,
        pull: flags.pull ?? false,
        labels: parseKeyValues(flags.label ?? []),
        secrets: await secrets(flags.secret ?? [], scratch),
        ...(flags.network ? { network: flags.network } : {}),
        ...(flags.reproducible ? (envEpoch !== undefined ? { sourceDateEpoch: Number(envEpoch) } : {}) : { sourceDateEpoch: false }),
        onEvent: view.onEvent,
      });
    } catch (err) {
      view.finish();
      view.failed();
      throw err;
    }
    view.finish();
    if (flags.iidfile) await writeFile(flags.iidfile, result.imageId);
    if (g.format === 'json') printJSON({ id: result.imageId, manifest: result.manifest, tags: result.tags });
    else if (flags.quiet) process.stdout.write(`${result.imageId}\n`);
    else {
      process.stdout.write(`Successfully built ${shortId(result.imageId)}\n`);
      for (const t of tags) process.stdout.write(`Successfully tagged ${familiarString(parseReference(t))}\n`);
    }
  } finally {
    if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
  }
}

export function registerBuild(program: Command): void {
  example(
    program
      .command('build')
      .description('Build an image from a Dockerfile (reproducible: the same Dockerfile and context give the same image ID)')
      .argument('<context>', 'the build context: a directory, or - for a tar archive (or a lone Dockerfile) on stdin')
      .option('-t, --tag <name>', 'name the image (repeatable)', collect)
      .option('-f, --file <path>', 'the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)')
      .option('--build-arg <key=value>', 'set a build-time variable (repeatable)', collect)
      .option('--target <stage>', 'build up to this stage')
      .option('--platform <os/arch[/variant]>', "the platform of base images (default: this host's)")
      .option('--no-cache', 'do not use the build cache')
      .option('--pull', 'always pull base images')
      .option('--label <key=value>', 'set a label on the image (repeatable)', collect)
      .option('-q, --quiet', 'print only the image ID')
      .option('--iidfile <file>', 'write the image ID to a file')
      .option('--secret <id=ID,src=FILE>', 'a secret RUN --mount=type=secret can read (never in a layer; repeatable)', collect)
      .option('--network <mode>', 'network of RUN steps: bridge (default where berth makes networks), host or none')
      .option('--no-reproducible', 'keep real times in layers, config and history (the image ID then changes on every build)')
      .action(async (context: string, flags: BuildFlags, cmd: Command) => withBerth(cmd, (b, g) => runBuild(b, g, context, flags))),
    'berth build -t app:1 .',
    'SOURCE_DATE_EPOCH=1700000000 berth build -q .',
  );
  const builder = example(program.command('builder').description('Manage the build cache'), 'berth builder prune -a -f');
  example(
    pruneOptions(
      builder.command('prune').description('Remove the build cache').option('-a, --all', 'also the cache mounts (RUN --mount=type=cache)'),
    ).action(async (flags: { all?: boolean; force?: boolean }, cmd: Command) =>
      withBerth(cmd, async (b, g) => {
        await confirm(flags.force, 'WARNING! This will remove all build cache.\n');
        const r = await pruneBuildCache(b, g.namespace, { all: flags.all ?? false });
        if (g.format === 'json') printJSON(r);
        else {
          for (const id of r.removed) process.stdout.write(`Deleted build cache object: ${id.slice(0, 25)}\n`);
          process.stdout.write(`Total:\t${humanSize(r.reclaimed)}\n`);
        }
      }),
    ),
    'berth builder prune -f',
  );
}
