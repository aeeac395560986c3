import { BLOCK, type TarHeader } from './header.js';

const FLAGS: Record<TarHeader['type'], string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const encoder = new TextEncoder();

/** Two zero blocks: the end of an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

/** Zero bytes that pad a member's data of `size` bytes to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/**
 * Encodes a member header as ustar, preceded by a PAX extended header when a value does not fit
 * (long or non-ASCII names, large ids or sizes, nanosecond times, xattrs). Records are sorted, so one
 * header always gives the same bytes. Sparse maps are not written: the data goes out whole.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const pax = new Map<string, Buffer>();
  const name = h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const fits = (s: string, len: number) => /^[\x20-\x7e]*$/.test(s) && s.length <= len;
  if (!fits(name, 100)) pax.set('path', Buffer.from(name));
  if (!fits(h.linkname, 100)) pax.set('linkpath', Buffer.from(h.linkname));
  if (h.uid > 0o7777777) pax.set('uid', Buffer.from(String(h.uid)));
  if (h.gid > 0o7777777) pax.set('gid', Buffer.from(String(h.gid)));
  if (h.size > 0o77777777777) pax.set('size', Buffer.from(String(h.size)));
  if (!fits(h.uname, 32)) pax.set('uname', Buffer.from(h.uname));
  if (!fits(h.gname, 32)) pax.set('gname', Buffer.from(h.gname));
  const mtimeFits = h.mtime.nsec === 0 && h.mtime.sec >= 0 && h.mtime.sec <= 0o77777777777;
  if (!mtimeFits) pax.set('mtime', Buffer.from(formatTime(h.mtime.sec, h.mtime.nsec)));
  for (const [k, v] of h.xattrs) pax.set(`SCHILY.xattr.${k}`, v);

  const main = ustar({
    name: pax.has('path') ? name.slice(0, 100) : name,
    flag: FLAGS[h.type],
    mode: h.mode,
    uid: pax.has('uid') ? 0 : h.uid,
    gid: pax.has('gid') ? 0 : h.gid,
    size: h.type === 'file' && !pax.has('size') ? h.size : 0,
    mtime: mtimeFits ? h.mtime.sec : Math.max(0, Math.min(h.mtime.sec, 0o77777777777)),
    linkname: pax.has('linkpath') ? '' : h.linkname,
    uname: pax.has('uname') ? '' : h.uname,
    gname: pax.has('gname') ? '' : h.gname,
    devmajor: h.devmajor,
    devminor: h.devminor,
  });
  if (pax.size === 0) return main;
  const body = Buffer.concat([...pax.keys()].sort().map((k) => paxRecord(k, pax.get(k) as Buffer)));
  const slash = name.replace(/\/$/, '').lastIndexOf('/');
  const paxName = `${slash === -1 ? '.' : name.slice(0, slash)}/PaxHeaders.0/${name.replace(/\/$/, '').slice(slash + 1)}`;
  const paxHeader = ustar({
    name: Buffer.from(paxName).subarray(0, 100).toString('latin1'),
    flag: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, body, tarPadding(body.length), main]);
}

function formatTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec);
  // Negative times count nanoseconds up from the second below: -1.5 s is sec -2, nsec 500000000.
  if (sec < 0) {
    const total = -(sec + 1);
    return `-${total}.${String(1e9 - nsec).padStart(9, '0')}`.replace(/0+$/, '');
  }
  return `${sec}.${String(nsec).padStart(9, '0')}`.replace(/0+$/, '');
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = encoder.encode(` ${key}=`).length + value.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

interface Ustar {
  name: string;
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function ustar(u: Ustar): Buffer {
  const b = Buffer.alloc(BLOCK);
  const str = (s: string, off: number, len: number) => Buffer.from(s).copy(b, off, 0, len);
  const oct = (n: number, off: number, len: number) => b.write(`${n.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
  str(u.name, 0, 100);
  oct(u.mode, 100, 8);
  oct(u.uid, 108, 8);
  oct(u.gid, 116, 8);
  oct(u.size, 124, 12);
  oct(u.mtime, 136, 12);
  b.write(u.flag, 156, 1, 'latin1');
  str(u.linkname, 157, 100);
  b.write('ustar\x0000', 257, 8, 'latin1');
  str(u.uname, 265, 32);
  str(u.gname, 297, 32);
  oct(u.devmajor, 329, 8);
  oct(u.devminor, 337, 8);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}
