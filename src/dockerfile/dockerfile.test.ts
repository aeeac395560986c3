// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text, where ${VAR} is substitution
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyConfig, type ConfigState, envLookup, parseDockerfile, ShellLex } from './index.js';

const env = (vars: Record<string, string>) => (name: string) => vars[name];

test('lexer: quotes, escapes and the substitution forms docker supports', () => {
  const lex = new ShellLex();
  const vars = env({ A: 'a', EMPTY: '', SP: 'x y' });
  assert.equal(lex.word('$A ${A} "${A}" \'$A\'', vars), 'a a a $A');
  assert.equal(lex.word('${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${A:+set} ${EMPTY:+set} ${EMPTY+set}', vars), 'd  d set  set');
  assert.equal(lex.word('\\$A \\"q\\" "in \\"double\\" \\n"', vars), '$A "q" in "double" \\n');
  assert.equal(lex.word('$1 $ a$', vars), ' $ a$');
  assert.deepEqual(lex.words('$SP "$SP" z', vars), ['x', 'y', 'x y', 'z']);
  assert.throws(() => lex.word('${A', vars), /missing '}'/);
  assert.throws(() => lex.word('"open', vars), /double-quote/);
  assert.throws(() => lex.word('${UNSET:?needs a value}', vars), /UNSET: needs a value/);
  assert.equal(new ShellLex({ escape: '`' }).word('`$A C:\\path', vars), '$A C:\\path');
  // a here-document body: quotes are text, the escape only protects $ and itself
  assert.equal(new ShellLex({ heredoc: true }).word('it\'s "$A" \\$A \\n', vars), 'it\'s "a" $A \\n');
});

test('parser: directives, comments, continuations, the exec form, flags and here-documents', () => {
  const df = parseDockerfile(
    [
      '# escape=`',
      '# syntax=docker/dockerfile:1',
      'FROM alpine AS base',
      '# a comment',
      'RUN echo one `',
      '  # a comment inside is dropped',
      '',
      '  two',
      'COPY --from=base --chown=1:2 ["a b", "/dst/"]',
      'RUN <<EOF cat > /x',
      'line $A',
      'EOF',
      'COPY <<-"END" /y',
      '\tkept literally $A',
      '\tEND',
      'CMD ["sh", "-c", "echo"]',
    ].join('\n'),
  );
  assert.equal(df.escape, '`');
  assert.equal(df.syntax, 'docker/dockerfile:1');
  const [from, run, copy, heredoc, copyDoc, cmd] = df.instructions;
  assert.equal(from?.args, 'alpine AS base');
  assert.equal(run?.args, 'echo one   two');
  assert.deepEqual([run?.line, run?.endLine], [5, 8]);
  assert.deepEqual(copy?.flags, ['--from=base', '--chown=1:2']);
  assert.deepEqual(copy?.json, ['a b', '/dst/']);
  assert.deepEqual(heredoc?.heredocs, [{ name: 'EOF', content: 'line $A\n', expand: true, chomp: false }]);
  assert.deepEqual(copyDoc?.heredocs, [{ name: 'END', content: 'kept literally $A\n', expand: false, chomp: true }]);
  assert.deepEqual(cmd?.json, ['sh', '-c', 'echo']);
  assert.equal(cmd?.line, 16);
  assert.throws(() => parseDockerfile('RUN <<EOF\nno end\n'), /Dockerfile:1: unterminated heredoc/);
  assert.throws(() => parseDockerfile('# only a comment\n'), /no instructions/);
  assert.throws(() => parseDockerfile('# escape=x\nFROM a'), /invalid escape token/);
});

test('config instructions as docker applies them', () => {
  const run = (lines: string[], args = new Map<string, string>()) => {
    const state: ConfigState = { config: { Env: ['PATH=/bin'], Cmd: ['inherited'] }, cmdSet: false };
    const lex = new ShellLex();
    for (const ins of parseDockerfile(lines.join('\n')).instructions) applyConfig(state, ins, lex, args);
    return state;
  };
  const s = run(
    [
      'ENV A=1 B="two words" C=$A-${B}',
      'ENV D=$A-${B}',
      'ENV OLD legacy form',
      'LABEL "x.y"=$A z=plain',
      'WORKDIR /a',
      'WORKDIR b/../c',
      'USER $A:$A',
      'EXPOSE 80 53/udp 7000-7001',
      'VOLUME ["/data", "/logs"]',
      'STOPSIGNAL SIGINT',
      'ENTRYPOINT ["/bin/app"]',
      'HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost',
      'SHELL ["/bin/bash", "-c"]',
      'CMD run it',
      'ONBUILD RUN echo later',
    ],
    new Map([['UNUSED', 'u']]),
  );
  const c = s.config;
  assert.deepEqual(c.Env, ['PATH=/bin', 'A=1', 'B=two words', 'C=-', 'D=1-two words', 'OLD=legacy form']);
  assert.deepEqual(c.Labels, { 'x.y': '1', z: 'plain' });
  assert.equal(c.WorkingDir, '/a/c');
  assert.equal(c.User, '1:1');
  assert.deepEqual(Object.keys(c.ExposedPorts ?? {}), ['80/tcp', '53/udp', '7000/tcp', '7001/tcp']);
  assert.deepEqual(Object.keys(c.Volumes ?? {}), ['/data', '/logs']);
  assert.equal(c.StopSignal, 'SIGINT');
  assert.deepEqual(c.Entrypoint, ['/bin/app']);
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 5e9, Retries: 2 });
  assert.deepEqual(c.Cmd, ['/bin/bash', '-c', 'run it']);
  assert.deepEqual(c.OnBuild, ['RUN echo later']);
  // one ENV's values see the variables as they were before it (C); the next one sees them (D).
  // ENTRYPOINT resets a CMD the stage did not set itself; ENV wins over an ARG of the same name
  assert.equal(run(['ENTRYPOINT ["x"]']).config.Cmd, undefined);
  assert.deepEqual(run(['CMD ["c"]', 'ENTRYPOINT ["x"]']).config.Cmd, ['c']);
  assert.equal(envLookup(['V=env'], new Map([['V', 'arg']]))('V'), 'env');
  assert.throws(() => run(['EXPOSE 70000']), /invalid port range|invalid containerPort/);
  assert.throws(() => run(['ONBUILD ONBUILD RUN x']), /Chaining ONBUILD/);
  assert.throws(() => run(['HEALTHCHECK --bogus=1 CMD x']), /unknown flag: --bogus/);
});
