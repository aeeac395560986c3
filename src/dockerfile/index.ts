export { applyConfig, type ConfigState, commandArgs, configKeywords, defaultShell, envLookup, normalize } from './config.js';
export { csvFields, type FlagKind, parseFlags } from './flags.js';
export { type Lookup, ShellLex } from './lex.js';
export {
  type Dockerfile,
  DockerfileError,
  type Heredoc,
  type Instruction,
  instruction,
  nameValues,
  parseDockerfile,
  splitWords,
} from './parse.js';
