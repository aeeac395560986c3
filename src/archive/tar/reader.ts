import { InvalidArgumentError, throwIfAborted } from '../../errdefs/index.js';
import type { Timespec } from '../../sys/index.js';
import { BLOCK, type EntryType, type SparseSegment, type TarHeader } from './header.js';

// Written by hand: the JS tar parsers on npm decode PAX values as UTF-8 text, which destroys binary
// xattrs such as security.capability, and none reads GNU sparse files.

const MAX_META = 1 << 20; // PAX header, GNU long name or sparse map: 1 MiB at most
const decoder = new TextDecoder();

/** One archive member; read or skip `body` before asking for the next entry. */
export interface TarEntry {
  readonly header: TarHeader;
  /** The member's data: for sparse files, the data segments one after another (see header.sparse). */
  body(): AsyncIterable<Uint8Array>;
}

export interface ReadTarOpts {
  signal?: AbortSignal;
}

/**
 * Parses a tar stream (ustar, GNU and PAX, as Go's archive/tar reads them): long names and link names,
 * PAX records with binary values, base-256 numbers, nanosecond times, GNU and PAX sparse files.
 * Entries come one at a time and bodies stream, so memory stays bounded whatever the archive holds.
 * Framing is read as Go's archive/tar reads it (containerd and docker unpack with it): the input
 * may end at an entry boundary, inside the padding after an entry's data, or after a single zero
 * block, and whatever follows the end-of-archive marker is read and ignored, so the caller's digest
 * still covers every byte. An end inside a header or an entry's data is a truncated archive.
 * @throws InvalidArgumentError on a malformed or truncated header, naming the entry when it is known
 */
export async function* readTar(source: AsyncIterable<Uint8Array>, opts: ReadTarOpts = {}): AsyncGenerator<TarEntry> {
  const input = new ByteReader(source);
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    throwIfAborted(opts.signal);
    const block = await input.readExact(BLOCK, 'a header');
    if (block === undefined || isZero(block)) break;
    verifyChecksum(block);
    const flag = String.fromCharCode(block[156] ?? 0);
    const size = readNumber(block, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new InvalidArgumentError(`tar: extended header of ${size} bytes, more than ${MAX_META}`);
      const data = await input.readFull(size, 'an extended header');
      await input.skipPadding(padding(size));
      if (flag === 'x') pax = parsePax(data);
      else if (flag === 'g') globalPax = new Map([...globalPax, ...parsePax(data)]);
      else if (flag === 'L') longName = cString(data);
      else longLink = cString(data);
      continue;
    }
    const records = pax ? new Map([...globalPax, ...pax]) : globalPax;
    const paxSize = records.get('size')?.toString();
    if (paxSize !== undefined && !/^\d+$/.test(paxSize)) throw new InvalidArgumentError(`tar: bad PAX size "${paxSize}"`);
    const bodySize = paxSize !== undefined ? Number(paxSize) : size;
    if (!Number.isSafeInteger(bodySize)) throw new InvalidArgumentError(`tar: bad PAX size "${paxSize}"`);
    const header = parseHeader(block, flag, bodySize, records, longName, longLink);
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    let stored = header.type === 'file' || header.type === 'link' ? bodySize : 0;
    if (flag === 'S') {
      header.sparse = await readGnuSparseExtensions(block, input);
    } else if (records.get('GNU.sparse.major')?.toString() === '1') {
      // PAX sparse 1.0: the map opens the data, padded to a block.
      const { map, consumed } = await readSparseMap1(input, header.name);
      header.sparse = map;
      stored -= consumed;
    }
    if (header.sparse) checkSparse(header);
    let done = false;
    const remaining = { n: stored };
    const entry: TarEntry = {
      header,
      body: () => {
        if (done) throw new Error(`tar: body of "${header.name}" already read`);
        done = true;
        return input.stream(remaining, header.name);
      },
    };
    yield entry;
    // Whatever the consumer did not read is skipped, then the padding (which may be cut short).
    await input.skip(remaining.n, header.name);
    remaining.n = 0;
    await input.skipPadding(padding(bodySize));
  }
  await input.drain();
}

function truncated(what: string): InvalidArgumentError {
  return new InvalidArgumentError(`tar: unexpected end of archive inside ${what}`);
}

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function verifyChecksum(b: Buffer): void {
  const want = readOctal(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 32 : (b[i] as number);
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  if (want !== unsigned && want !== signed) {
    // The name field of what is maybe not a header at all: shown escaped and short, on one line.
    const near = JSON.stringify(cString(b.subarray(0, 100)).slice(0, 40)).replace(/[^\x20-\x7e]/g, '?');
    throw new InvalidArgumentError(`tar: bad header checksum near ${near} (not a tar archive, or corrupt)`);
  }
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return decoder.decode(end === -1 ? b : b.subarray(0, end));
}

/**
 * An octal field: digits between NULs and spaces; what follows a NUL is ignored, what follows a
 * space must be NULs and spaces. NaN when it is not a number; 0 when empty. Byte by byte: it runs
 * eight times for every header.
 */
function readOctal(b: Buffer, off: number, len: number): number {
  const end = off + len;
  let i = off;
  while (i < end && (b[i] === 0 || b[i] === 0x20)) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x37) break;
    n = n * 8 + (c - 0x30);
  }
  if (i < end && b[i] === 0) return n;
  for (; i < end; i++) if (b[i] !== 0 && b[i] !== 0x20) return Number.NaN;
  return n;
}

/** Octal, or base-256 (GNU) when the high bit of the first byte is set. */
function readNumber(b: Buffer, off: number, len: number, field: string): number {
  const first = b[off] as number;
  let n: number;
  if (first & 0x80) {
    if (first === 0xff) throw new InvalidArgumentError(`tar: negative ${field}`);
    n = first & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + (b[off + i] as number);
  } else {
    n = readOctal(b, off, len);
  }
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`tar: bad ${field} field`);
  return n;
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break; // NUL padding after the last record
    const space = data.indexOf(0x20, off);
    const len = Number.parseInt(data.subarray(off, space).toString('latin1'), 10);
    if (space === -1 || !Number.isSafeInteger(len) || len <= space - off + 1 || off + len > data.length || data[off + len - 1] !== 0x0a) {
      throw new InvalidArgumentError('tar: malformed PAX record');
    }
    const rec = data.subarray(space + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new InvalidArgumentError('tar: malformed PAX record');
    out.set(decoder.decode(rec.subarray(0, eq)), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

/** "1700000000.123456789" or "-1.5" → seconds and nanoseconds, exactly. */
export function parsePaxTime(s: string): Timespec {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) throw new InvalidArgumentError(`tar: bad PAX time "${s}"`);
  let sec = Number(m[2]);
  let nsec = Number(((m[3] ?? '') + '000000000').slice(0, 9));
  if (m[1] === '-') {
    sec = -sec;
    if (nsec > 0) {
      sec -= 1;
      nsec = 1e9 - nsec;
    }
  }
  return { sec, nsec };
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  S: 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

function parseHeader(
  b: Buffer,
  flag: string,
  size: number,
  pax: Map<string, Buffer>,
  longName: string | undefined,
  longLink: string | undefined,
): TarHeader {
  let name = cString(b.subarray(0, 100));
  const magic = b.subarray(257, 263).toString('latin1');
  if (magic === 'ustar\0' && b[345] !== 0) name = `${cString(b.subarray(345, 500))}/${name}`;
  name = longName ?? name;
  const str = (k: string) => {
    const v = pax.get(k);
    return v === undefined ? undefined : decoder.decode(v);
  };
  name = str('GNU.sparse.name') ?? str('path') ?? name;
  let type = TYPES[flag];
  if (type === 'file' && name.endsWith('/')) type = 'dir'; // old tars mark directories by the slash
  if (type === undefined) throw new InvalidArgumentError(`tar entry "${name}": unsupported type flag ${JSON.stringify(flag)}`);
  const num = (k: string, off: number, len: number, field: string) => {
    const v = str(k);
    if (v === undefined) return readNumber(b, off, len, field);
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`tar entry "${name}": bad PAX ${k} "${v}"`);
    return n;
  };
  const xattrs = new Map<string, Buffer>();
  for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
  const mtimeS = str('mtime');
  const atimeS = str('atime');
  const header: TarHeader = {
    name,
    type,
    mode: readNumber(b, 100, 8, 'mode') & 0o7777,
    uid: num('uid', 108, 8, 'uid'),
    gid: num('gid', 116, 8, 'gid'),
    size: type === 'file' ? size : 0,
    mtime: mtimeS !== undefined ? parsePaxTime(mtimeS) : { sec: readNumber(b, 136, 12, 'mtime'), nsec: 0 },
    atime: atimeS !== undefined ? parsePaxTime(atimeS) : undefined,
    linkname: str('linkpath') ?? longLink ?? cString(b.subarray(157, 257)),
    uname: str('uname') ?? cString(b.subarray(265, 297)),
    gname: str('gname') ?? cString(b.subarray(297, 329)),
    devmajor: type === 'char' || type === 'block' ? readNumber(b, 329, 8, 'devmajor') : 0,
    devminor: type === 'char' || type === 'block' ? readNumber(b, 337, 8, 'devminor') : 0,
    xattrs,
  };
  if (flag === 'S') header.size = readNumber(b, 483, 12, 'realsize');
  const realKey = ['GNU.sparse.realsize', 'GNU.sparse.size'].find((k) => pax.has(k));
  if (realKey) header.size = num(realKey, 124, 12, 'size');
  const map01 = str('GNU.sparse.map');
  if (map01 !== undefined) header.sparse = pairs(map01.split(',').filter(Boolean).map(Number), name);
  return header;
}

function pairs(nums: number[], name: string): SparseSegment[] {
  if (nums.length % 2 !== 0 || nums.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new InvalidArgumentError(`tar entry "${name}": bad sparse map`);
  }
  const out: SparseSegment[] = [];
  for (let i = 0; i < nums.length; i += 2) out.push({ offset: nums[i] as number, length: nums[i + 1] as number });
  return out;
}

async function readGnuSparseExtensions(block: Buffer, input: ByteReader): Promise<SparseSegment[]> {
  const segs: SparseSegment[] = [];
  const take = (b: Buffer, off: number, count: number) => {
    for (let i = 0; i < count; i++) {
      const o = off + i * 24;
      if (b[o] === 0) break;
      segs.push({ offset: readNumber(b, o, 12, 'sparse offset'), length: readNumber(b, o + 12, 12, 'sparse length') });
    }
  };
  take(block, 386, 4);
  let extended = block[482] !== 0;
  while (extended) {
    if (segs.length * 24 > MAX_META) throw new InvalidArgumentError('tar: sparse map too large');
    const ext = await input.readFull(BLOCK, 'a sparse header');
    take(ext, 0, 21);
    extended = ext[504] !== 0;
  }
  return segs;
}

async function readSparseMap1(input: ByteReader, name: string): Promise<{ map: SparseSegment[]; consumed: number }> {
  const nums: number[] = [];
  let text = '';
  let consumed = 0;
  let count = -1;
  while (count < 0 || nums.length < count * 2) {
    if (consumed > MAX_META) throw new InvalidArgumentError(`tar entry "${name}": sparse map too large`);
    const b = await input.readFull(BLOCK, `the sparse map of ${JSON.stringify(name)}`);
    consumed += BLOCK;
    text += b.toString('latin1');
    const lines = text.split('\n');
    text = lines.pop() as string;
    for (const l of lines) {
      if (count < 0) count = Number(l);
      else if (nums.length < count * 2) nums.push(Number(l));
    }
    if (!Number.isSafeInteger(count)) throw new InvalidArgumentError(`tar entry "${name}": bad sparse map`);
  }
  return { map: pairs(nums, name), consumed };
}

function checkSparse(h: TarHeader): void {
  let end = 0;
  for (const s of h.sparse ?? []) {
    if (s.offset < end || s.offset + s.length > h.size) throw new InvalidArgumentError(`tar entry "${h.name}": bad sparse map`);
    end = s.offset + s.length;
  }
}

/** Pull-style reader over an async byte source, handing out slices of the incoming chunks without copying. */
class ByteReader {
  #it: AsyncIterator<Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #eof = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#eof = true;
      return false;
    }
    const c = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.#buf = this.#buf.length === 0 ? c : Buffer.concat([this.#buf, c]);
    return true;
  }

  /**
   * Exactly n bytes, or undefined when the input ends before the first of them.
   * @throws InvalidArgumentError when it ends part way, naming `what` was being read
   */
  async readExact(n: number, what: string): Promise<Buffer | undefined> {
    while (this.#buf.length < n) {
      if (!(await this.#fill())) {
        if (this.#buf.length === 0) return undefined;
        throw truncated(what);
      }
    }
    const out = Buffer.from(this.#buf.subarray(0, n));
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Exactly n bytes. @throws InvalidArgumentError when the input ends first, naming `what` was being read */
  async readFull(n: number, what: string): Promise<Buffer> {
    const b = await this.readExact(n, what);
    if (b === undefined && n > 0) throw truncated(what);
    return b ?? Buffer.alloc(0);
  }

  /** The data of entry `name`, `remaining.n` bytes. @throws InvalidArgumentError when the input ends first */
  async *stream(remaining: { n: number }, name: string): AsyncGenerator<Uint8Array> {
    while (remaining.n > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw truncated(`the data of ${JSON.stringify(name)}`);
      const take = Math.min(remaining.n, this.#buf.length);
      const out = this.#buf.subarray(0, take);
      this.#buf = this.#buf.subarray(take);
      remaining.n -= take;
      yield out;
    }
  }

  async skip(n: number, name: string): Promise<void> {
    for await (const _ of this.stream({ n }, name)) {
      // discarded
    }
  }

  /** Skips up to n bytes of padding; an input that ends inside it has simply ended (Go's tryReadFull). */
  async skipPadding(n: number): Promise<void> {
    while (this.#buf.length < n && (await this.#fill())) {
      // filling
    }
    this.#buf = this.#buf.subarray(Math.min(n, this.#buf.length));
  }

  /** Reads the input to its end (trailing zero blocks and anything after them). */
  async drain(): Promise<void> {
    this.#buf = Buffer.alloc(0);
    while (await this.#fill()) this.#buf = Buffer.alloc(0);
  }
}
