/**
 * A streaming reader of tar archives, as image layers are: POSIX ustar
 * with the pax (`x`) and GNU long-name (`L`, `K`) extensions and GNU's
 * base-256 sizes (disk images pass 8 GiB). Entry bodies stream through in
 * the input's chunks, so a layer is never held in memory whole.
 */

/** What a tar entry is. */
export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

/** One entry's header, after the extensions are applied. */
export interface TarEntry {
  /** The path as the archive has it (`disk/disk.qcow2`, `./boot/vmlinuz`). */
  path: string;
  type: TarEntryType;
  size: number;
  /** The target of a symlink or hardlink; '' otherwise. */
  linkTarget: string;
}

/** Called once per entry; `body` yields exactly `entry.size` bytes. What it leaves unread is skipped. */
export type TarEntryHandler = (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>;

/** An archive that is not valid tar; the message says where. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

const block = 512;
const maxExtensionBytes = 1024 * 1024;

/** Reads the archive from `input`, calling `onEntry` for each entry in order. */
export async function readTar(input: AsyncIterable<Buffer>, onEntry: TarEntryHandler): Promise<void> {
  const reader = new ByteReader(input);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const header = await reader.read(block);
    if (header === undefined || isZero(header)) return;
    verifyChecksum(header, reader.offset - block);
    const typeflag = String.fromCharCode(header[156] ?? 0);
    const extension = typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
    const size = Number((extension ? undefined : pax.get('size')) ?? readNumber(header, 124, 12));
    if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`tar header at byte ${reader.offset - block} has an invalid size`);
    const padded = Math.ceil(size / block) * block;

    if (extension) {
      if (size > maxExtensionBytes) throw new TarError(`tar extension header at byte ${reader.offset - block} is ${size} bytes, more than ${maxExtensionBytes}`);
      const data = (await reader.readExact(padded)).subarray(0, size);
      if (typeflag === 'x') pax = parsePax(data);
      else if (typeflag === 'L') longName = cString(data);
      else if (typeflag === 'K') longLink = cString(data);
      continue; // 'g' (global pax) carries nothing a layer's files need.
    }

    const entry: TarEntry = {
      path: pax.get('path') ?? longName ?? headerPath(header),
      type: entryType(typeflag),
      size: typeflag === '1' || typeflag === '2' || typeflag === '5' ? 0 : size,
      linkTarget: pax.get('linkpath') ?? longLink ?? cString(header.subarray(157, 257)),
    };
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    const body = reader.take(entry.size);
    await onEntry(entry, body);
    // The data region is what the header's size says, whatever the entry's type.
    await reader.skip(body.remaining() + padded - entry.size);
  }
}

function entryType(typeflag: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

function headerPath(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const ustar = header.subarray(257, 262).toString('latin1') === 'ustar';
  const prefix = ustar ? cString(header.subarray(345, 500)) : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

function cString(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return bytes.subarray(0, nul < 0 ? bytes.length : nul).toString('utf8');
}

/** An octal field, or GNU's base-256 (high bit of the first byte set). */
function readNumber(header: Buffer, offset: number, length: number): number {
  const field = header.subarray(offset, offset + length);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return Number.NaN;
  return parseInt(text, 8);
}

function verifyChecksum(header: Buffer, at: number): void {
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  const stored = readNumber(header, 148, 8);
  if (stored !== sum) throw new TarError(`tar header at byte ${at} has a bad checksum: the layer is not a tar archive, or it is corrupt`);
}

function isZero(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}

/** Pax records: `<length> <key>=<value>\n`, length counting the whole record. */
function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const length = parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!Number.isSafeInteger(length) || length <= space - at) throw new TarError('a pax extended header has a malformed record');
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return out;
}

/** An entry body being read: the bytes and how many of them are still unread. */
interface Body extends AsyncIterable<Buffer> {
  remaining(): number;
}

/** Exact-length reads over a stream of chunks. */
class ByteReader {
  private readonly source: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes consumed so far, for error messages. */
  offset = 0;

  constructor(input: AsyncIterable<Buffer>) {
    this.source = input[Symbol.asyncIterator]();
  }

  /** `n` bytes, or undefined when the stream ends cleanly before any of them. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.pending.length < n && !this.done) await this.fill();
    if (this.pending.length === 0 && this.done) return undefined;
    if (this.pending.length < n) throw new TarError(`the tar archive ends in the middle of a block at byte ${this.offset + this.pending.length}: the layer is truncated`);
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    this.offset += n;
    return out;
  }

  async readExact(n: number): Promise<Buffer> {
    const out = await this.read(n);
    if (out === undefined && n > 0) throw new TarError(`the tar archive ends at byte ${this.offset}, where ${n} more bytes were due: the layer is truncated`);
    return out ?? Buffer.alloc(0);
  }

  /** The next `n` bytes as chunks, without copying them into one buffer. */
  take(n: number): Body {
    let left = n;
    const next = async (): Promise<Buffer | undefined> => {
      if (left === 0) return undefined;
      if (this.pending.length === 0) {
        if (this.done) throw new TarError(`the tar archive ends at byte ${this.offset}, inside an entry's body: the layer is truncated`);
        await this.fill();
        return next();
      }
      const chunk = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(chunk.length);
      this.offset += chunk.length;
      left -= chunk.length;
      return chunk;
    };
    return {
      remaining: () => left,
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Buffer>> => {
          const chunk = await next();
          return chunk === undefined ? { done: true, value: undefined } : { done: false, value: chunk };
        },
      }),
    };
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) {
      // discarded
    }
  }

  private async fill(): Promise<void> {
    const result = await this.source.next();
    if (result.done === true) {
      this.done = true;
      return;
    }
    const chunk: Buffer = result.value;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
  }
}
