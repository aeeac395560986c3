import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { resolveInRoot } from './rootfs-path.js';

/** The largest /etc/passwd or /etc/group read from an image; real ones are kilobytes. */
export const maxUserDbSize = 4 << 20;

/** What a `--user` spec resolves to inside one root filesystem. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: every group of /etc/group that lists the user by name. */
  additionalGids: number[];
  /** The home directory from /etc/passwd, for HOME; `/` when unknown. */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID_MAX = 2 ** 31 - 1;

/**
 * Resolves a docker `--user` value (`name`, `uid`, `uid:gid`, `name:group`, `uid:group`…) through the
 * image's `/etc/passwd` and `/etc/group` (read confined to `rootfs`, at most {@link maxUserDbSize}
 * bytes each), as runc's libcontainer/user does: a numeric user need not exist, a named one must;
 * without a group the user's primary group is taken and supplementary groups are added.
 * @throws InvalidArgumentError for a malformed spec or an oversized file; NotFoundError for an unknown name
 */
export function resolveUser(rootfs: string, spec: string, extraGroups: readonly string[] = []): ResolvedUser {
  // No user: uid 0, which needs no /etc/passwd (an image imported from a bare tarball has none).
  const [userPart = '', groupPart] = spec === '' ? ['0'] : spec.split(':', 2);
  if (userPart === '' || (groupPart !== undefined && groupPart === '') || spec.split(':').length > 2) {
    throw new InvalidArgumentError(`invalid user "${spec}" (want NAME|UID[:GROUP|GID])`);
  }
  const passwd = readDb(rootfs, '/etc/passwd', parsePasswd);
  let groupDb: GroupEntry[] | undefined;
  const groups = () => {
    groupDb ??= readDb(rootfs, '/etc/group', parseGroup);
    return groupDb;
  };

  const numericUser = parseId(userPart);
  const entry = passwd.find((p) => (numericUser !== undefined ? p.uid === numericUser : p.name === userPart));
  if (!entry && numericUser === undefined) throw new NotFoundError(`unable to find user ${userPart}: no matching entries in passwd file`);
  const uid = numericUser ?? (entry as PasswdEntry).uid;
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined) gid = groupId(groups(), groupPart);
  const additional = new Set<number>();
  if (groupPart === undefined && entry) {
    for (const g of groups()) if (g.members.includes(entry.name) && g.gid !== gid) additional.add(g.gid);
  }
  for (const g of extraGroups) additional.add(groupId(groups(), g));
  return { uid, gid, additionalGids: [...additional].sort((a, b) => a - b), home: entry?.home || '/' };
}

function groupId(groups: GroupEntry[], spec: string): number {
  const n = parseId(spec);
  if (n !== undefined) return n;
  const g = groups.find((e) => e.name === spec);
  if (!g) throw new NotFoundError(`unable to find group ${spec}: no matching entries in group file`);
  return g.gid;
}

function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > ID_MAX) throw new InvalidArgumentError(`invalid user "${s}": id out of range`);
  return n;
}

/** Reads one of the image's user databases; absent means empty. */
function readDb<T>(rootfs: string, path: string, parse: (line: string) => T | undefined): T[] {
  let fd: number;
  try {
    fd = openSync(resolveInRoot(rootfs, path), 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return [];
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return [];
    if (st.size > maxUserDbSize) {
      throw new InvalidArgumentError(`image ${path}: ${st.size} bytes, larger than the ${maxUserDbSize} read`);
    }
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    const out: T[] = [];
    for (const line of buf.subarray(0, n).toString('utf8').split('\n')) {
      const e = parse(line);
      if (e) out.push(e);
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function parsePasswd(line: string): PasswdEntry | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const f = line.split(':');
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!f[0] || !Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0) return undefined;
  return { name: f[0], uid, gid, home: f[5] ?? '' };
}

function parseGroup(line: string): GroupEntry | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const f = line.split(':');
  const gid = Number(f[2]);
  if (!f[0] || !Number.isInteger(gid) || gid < 0 || f[2] === '') return undefined;
  return { name: f[0], gid, members: (f[3] ?? '').split(',').filter(Boolean) };
}
