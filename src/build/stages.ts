import { type Dockerfile, DockerfileError, type Instruction, parseFlags, ShellLex, splitWords } from '../dockerfile/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { formatPlatform, hostPlatform, type Platform } from '../oci/index.js';

/** One `FROM … [AS name]` and the instructions up to the next FROM. */
export interface Stage {
  index: number;
  /** The `AS` name, lower case, if any. */
  name?: string;
  from: Instruction;
  /** FROM's image argument as written (substituted with the global ARGs when the stage starts). */
  base: string;
  platform?: string;
  instructions: Instruction[];
}

export interface StagePlan {
  /** ARG instructions before the first FROM (they may be used in FROM lines, and redeclared in stages). */
  globalArgs: Instruction[];
  stages: Stage[];
}

/** Splits a Dockerfile at its FROM lines. @throws DockerfileError */
export function planStages(df: Dockerfile): StagePlan {
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of df.instructions) {
    if (ins.keyword === 'FROM') {
      const flags = parseFlags(ins, { platform: 'string' });
      const words = ins.args.trim().split(/\s+/).filter(Boolean);
      if (words.length !== 1 && !(words.length === 3 && words[1]?.toUpperCase() === 'AS')) {
        throw new DockerfileError('FROM requires either one or three arguments', ins.line);
      }
      const name = words[2]?.toLowerCase();
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw new DockerfileError(`invalid name for build stage: "${words[2]}"`, ins.line);
        if (stages.some((s) => s.name === name)) throw new DockerfileError(`duplicate stage name "${name}"`, ins.line);
      }
      const platform = flags.get('platform')?.[0];
      stages.push({
        index: stages.length,
        ...(name ? { name } : {}),
        from: ins,
        base: words[0] as string,
        ...(platform ? { platform } : {}),
        instructions: [],
      });
      continue;
    }
    const current = stages.at(-1);
    if (current) current.instructions.push(ins);
    else if (ins.keyword === 'ARG') globalArgs.push(ins);
    else throw new DockerfileError(`no build stage in current context: ${ins.keyword} before the first FROM`, ins.line);
  }
  if (stages.length === 0) throw new DockerfileError('the Dockerfile has no FROM', 1);
  return { globalArgs, stages };
}

/** The stage a name or index (`--from=0`, `FROM builder`) means, among those before `before`. */
export function stageByRef(plan: StagePlan, ref: string, before = plan.stages.length): Stage | undefined {
  const lower = ref.toLowerCase();
  const byName = plan.stages.find((s) => s.index < before && s.name === lower);
  if (byName) return byName;
  if (/^\d+$/.test(ref)) {
    const s = plan.stages[Number(ref)];
    if (s && s.index < before) return s;
  }
  return undefined;
}

/** The stage `--target` names, or the last one. @throws InvalidArgumentError */
export function targetStage(plan: StagePlan, target: string | undefined): Stage {
  if (target === undefined || target === '') return plan.stages.at(-1) as Stage;
  const s = plan.stages.find((x) => x.name === target.toLowerCase());
  if (!s) throw new InvalidArgumentError(`target stage "${target}" could not be found`);
  return s;
}

/** The platform ARGs BuildKit defines (TARGETPLATFORM, TARGETARCH, BUILDOS…), for the target and this host. */
export function platformArgs(target: Platform | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const set = (prefix: string, p: Platform) => {
    out.set(`${prefix}PLATFORM`, formatPlatform(p));
    out.set(`${prefix}OS`, p.os);
    out.set(`${prefix}ARCH`, p.architecture);
    out.set(`${prefix}VARIANT`, p.variant ?? '');
  };
  set('BUILD', hostPlatform());
  set('TARGET', target ?? hostPlatform());
  return out;
}

/**
 * The ARG declarations of one instruction: each name with its default (substituted), unless the
 * build args give it. `lookup` sees what was declared before.
 */
export function declareArgs(
  ins: Instruction,
  lex: ShellLex,
  lookup: (name: string) => string | undefined,
): { name: string; default?: string }[] {
  const words = splitWords(ins.args, lex.escape);
  if (words.length === 0) throw new DockerfileError('ARG requires at least one argument', ins.line);
  return words.map((w) => {
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new DockerfileError(`invalid ARG name "${name}"`, ins.line);
    return eq < 0 ? { name } : { name, default: lex.word(w.slice(eq + 1), lookup) };
  });
}

/** The stages the target needs (FROM a stage, COPY --from, RUN --mount from=), as far as they can be told before building. */
export function neededStages(plan: StagePlan, target: Stage, globals: (name: string) => string | undefined): Set<number> {
  const need = new Set<number>();
  const lex = new ShellLex();
  const visit = (s: Stage) => {
    if (need.has(s.index)) return;
    need.add(s.index);
    const refs: string[] = [safeWord(lex, s.base, globals)];
    for (const ins of s.instructions) {
      for (const f of ins.flags) {
        const m = /^--from=(.+)$/.exec(f);
        if (m) refs.push(safeWord(lex, m[1] as string, globals));
        const mount = /^--mount=(.*)$/.exec(f)?.[1];
        const from = mount ? /(?:^|,)from=([^,]+)/.exec(mount)?.[1] : undefined;
        if (from) refs.push(safeWord(lex, from, globals));
      }
    }
    for (const r of refs) {
      const dep = stageByRef(plan, r, s.index);
      if (dep) visit(dep);
    }
  };
  visit(target);
  return need;
}

function safeWord(lex: ShellLex, s: string, lookup: (name: string) => string | undefined): string {
  try {
    return lex.word(s, lookup);
  } catch {
    return s;
  }
}
