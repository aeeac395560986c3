import { InvalidArgumentError } from '../errdefs/index.js';

/** One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 7235), which may hold several challenges with quoted,
 * comma-bearing parameter values.
 * @throws InvalidArgumentError for a header that does not follow the grammar
 */
export function parseWWWAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipSpace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipSpace();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const scheme = token();
    if (!scheme) throw new InvalidArgumentError(`invalid WWW-Authenticate header ${JSON.stringify(header.slice(0, 200))}`);
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skipSpace();
      const save = i;
      const name = token();
      skipSpace();
      if (!name || s[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skipSpace();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else value = token();
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (s[i] === ',') i++;
    }
  }
  return out;
}

/** A bearer token and when to stop using it. */
export interface Token {
  token: string;
  expiresAt: number;
}

/** The scope string a registry token grants: `repository:library/busybox:pull,push`. */
export function repositoryScope(path: string, actions: ('pull' | 'push')[]): string {
  return `repository:${path}:${actions.join(',')}`;
}
