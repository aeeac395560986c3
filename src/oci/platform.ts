import { InvalidArgumentError } from '../errdefs/index.js';

/** Where an image runs, as the OCI image spec describes it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

const knownOS = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'windows',
  'zos',
]);
const knownArch = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'ppc64',
  'ppc64le',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
]);
const componentRe = /^[A-Za-z0-9_.-]+$/;

/** The canonical os, architecture and variant for aliases (`x86_64`, `aarch64`, `armhf`, arm64 `v8`, arm `7`...). */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { ...p, os, architecture: arch };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/** The platform of this machine, normalised. */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
  };
  const p: Platform = {
    os: process.platform === 'win32' ? 'windows' : process.platform,
    architecture: archMap[process.arch] ?? process.arch,
  };
  if (p.architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    if (v !== undefined) p.variant = `v${String(v)}`;
  }
  return normalizePlatform(p);
}

/**
 * Parses a platform specifier `os`, `arch`, `os/arch` or `os/arch/variant` and normalises it.
 * A lone os takes the host's architecture, a lone architecture the host's os, as containerd does.
 * @throws InvalidArgumentError
 */
export function parsePlatform(s: string): Platform {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(s.length > 100 ? `${s.slice(0, 97)}...` : s)}: ${why}`);
  };
  if (s.includes('*')) fail('wildcards are not supported');
  const parts = s.split('/');
  if (parts.length > 3) fail('expected os[/arch[/variant]]');
  for (const part of parts) if (!componentRe.test(part)) fail('each part must be letters, digits, "_", "." or "-"');
  const [a, b, c] = parts as [string, string?, string?];
  const host = hostPlatform();
  if (b === undefined) {
    const lower = a.toLowerCase();
    if (knownOS.has(lower === 'macos' ? 'darwin' : lower)) {
      return normalizePlatform({ os: a, architecture: host.architecture, ...(host.variant ? { variant: host.variant } : {}) });
    }
    const arch = normalizePlatform({ os: host.os, architecture: a });
    if (knownArch.has(arch.architecture)) return arch;
    return fail('unknown operating system or architecture');
  }
  const p = normalizePlatform({ os: a, architecture: b, ...(c !== undefined ? { variant: c } : {}) });
  if (!knownOS.has(p.os)) fail(`unknown operating system "${p.os}"`);
  if (!knownArch.has(p.architecture)) fail(`unknown architecture "${p.architecture}"`);
  return p;
}

/** `os/arch[/variant]` of a platform, normalised. */
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return `${n.os}/${n.architecture}${n.variant ? `/${n.variant}` : ''}`;
}

const arm64Versions: Record<string, { major: number[]; minor: number[] }> = {
  v8: { major: [8], minor: [0] },
  'v8.0': { major: [8], minor: [0] },
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8, 9].map((m) => [`v8.${m}`, { major: [8], minor: [m] }])),
  v9: { major: [9, 8], minor: [0, 5] },
  'v9.0': { major: [9, 8], minor: [0, 5] },
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7].map((m) => [`v9.${m}`, { major: [9, 8], minor: [m, Math.min(m + 5, 9)] }])),
};

/** The platforms a host of `p` can run, best first, as containerd's `platforms.Only` lists them. */
function compatible(p: Platform): Platform[] {
  const base = { os: p.os, ...(p['os.version'] ? { 'os.version': p['os.version'] } : {}) };
  const out: Platform[] = [p];
  const n = Number.parseInt((p.variant ?? '').replace(/^v/, ''), 10);
  switch (p.architecture) {
    case 'amd64':
      if (/^v\d+$/.test(p.variant ?? '') && n > 1) {
        for (let v = n - 1; v >= 1; v--) out.push({ ...base, architecture: 'amd64', variant: `v${v}` });
      }
      out.push({ ...base, architecture: '386' });
      return out;
    case 'arm':
      if (/^v\d+$/.test(p.variant ?? '') && n > 5) {
        for (let v = n - 1; v >= 5; v--) out.push({ ...base, architecture: 'arm', variant: `v${v}` });
      }
      return out;
    case 'arm64': {
      const variant = p.variant || 'v8';
      const versions = arm64Versions[variant];
      if (!versions) return [];
      const list: Platform[] = [];
      versions.major.forEach((major, i) => {
        for (let minor = versions.minor[i] ?? 0; minor >= 0; minor--) {
          list.push({ ...base, architecture: 'arm64', variant: minor === 0 ? `v${major}` : `v${major}.${minor}` });
        }
      });
      return list.concat(compatible({ ...base, architecture: 'arm', variant: 'v8' }));
    }
    default:
      return out;
  }
}

function same(a: Platform, b: Platform): boolean {
  const x = normalizePlatform(a);
  const y = normalizePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && (x.variant ?? '') === (y.variant ?? '');
}

/** Matches and orders candidate platforms (e.g. an index's entries) for one wanted platform. */
export interface PlatformMatcher {
  match(p: Platform): boolean;
  /** Whether `a` is a better choice than `b`. */
  less(a: Platform, b: Platform): boolean;
}

/**
 * What a host of `wanted` can run, best first: amd64/v3 also runs v2, v1 and 386; arm/v7 also runs
 * v6 and v5; arm64/v8.x also runs arm64/v8.{0..x-1} and arm v8 to v5 (containerd's `platforms.Only`).
 */
export function platformMatcher(wanted: Platform): PlatformMatcher {
  const order = compatible(normalizePlatform(wanted));
  const rank = (p: Platform) => {
    const i = order.findIndex((o) => same(o, p));
    return i === -1 ? Number.POSITIVE_INFINITY : i;
  };
  return {
    match: (p) => rank(p) !== Number.POSITIVE_INFINITY,
    less: (a, b) => rank(a) < rank(b),
  };
}

/** Only `wanted` itself, no older variants (containerd's `OnlyStrict`). */
export function strictPlatformMatcher(wanted: Platform): PlatformMatcher {
  return { match: (p) => same(wanted, p), less: (a, b) => same(wanted, a) && !same(wanted, b) };
}
