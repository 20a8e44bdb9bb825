/**
 * Sequential little-endian reads of a file's header through a window of positioned reads, so a header is
 * parsed without reading the file whole. Every read is checked against the file's size first; running past the
 * end fails with a message saying what was being read and where.
 */
import type { FileHandle } from 'node:fs/promises';

/** Bytes fetched per positioned read (a header larger than this is read in several windows). */
const WINDOW_BYTES = 1 << 20;

export class HeaderReader {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  /** Absolute offset of the next byte to read. */
  pos = 0;

  constructor(
    private readonly fh: FileHandle,
    /** File size in bytes. */
    readonly size: number,
    /** Throws the reader's error type with `message`. */
    private readonly fail: (message: string) => never,
  ) {}

  /** Bytes left after `pos`. */
  get remaining(): number {
    return this.size - this.pos;
  }

  /** Make `n` bytes at `pos` available in the window. */
  private async need(n: number, what: string): Promise<number> {
    if (n > this.remaining) this.fail(`${what} at byte ${this.pos} needs ${n} bytes but the ${this.size}-byte file ends first (truncated?)`);
    const at = this.pos - this.windowStart;
    if (at >= 0 && at + n <= this.window.length) return at;
    const length = Math.min(Math.max(n, WINDOW_BYTES), this.remaining);
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(buf, got, length - got, this.pos + got);
      if (bytesRead === 0) this.fail(`${what}: the file ends at byte ${this.pos + got} although it reported ${this.size} bytes (it changed while being read?)`);
      got += bytesRead;
    }
    this.window = buf;
    this.windowStart = this.pos;
    return 0;
  }

  async bytes(n: number, what: string): Promise<Buffer> {
    const at = await this.need(n, what);
    this.pos += n;
    return this.window.subarray(at, at + n);
  }

  async u8(what: string): Promise<number> {
    const at = await this.need(1, what);
    this.pos += 1;
    return this.window[at];
  }

  async i8(what: string): Promise<number> {
    const at = await this.need(1, what);
    this.pos += 1;
    return this.window.readInt8(at);
  }

  async u16(what: string): Promise<number> {
    const at = await this.need(2, what);
    this.pos += 2;
    return this.window.readUInt16LE(at);
  }

  async i16(what: string): Promise<number> {
    const at = await this.need(2, what);
    this.pos += 2;
    return this.window.readInt16LE(at);
  }

  async u32(what: string): Promise<number> {
    const at = await this.need(4, what);
    this.pos += 4;
    return this.window.readUInt32LE(at);
  }

  async i32(what: string): Promise<number> {
    const at = await this.need(4, what);
    this.pos += 4;
    return this.window.readInt32LE(at);
  }

  async u64(what: string): Promise<bigint> {
    const at = await this.need(8, what);
    this.pos += 8;
    return this.window.readBigUInt64LE(at);
  }

  async i64(what: string): Promise<bigint> {
    const at = await this.need(8, what);
    this.pos += 8;
    return this.window.readBigInt64LE(at);
  }

  async f32(what: string): Promise<number> {
    const at = await this.need(4, what);
    this.pos += 4;
    return this.window.readFloatLE(at);
  }

  async f64(what: string): Promise<number> {
    const at = await this.need(8, what);
    this.pos += 8;
    return this.window.readDoubleLE(at);
  }

  /**
   * A uint64 count of items of at least `minItemBytes` each that must follow it: more than the rest of the
   * file can hold is refused before anything is allocated. `max` caps it further.
   */
  async count(what: string, minItemBytes: number, max = Number.MAX_SAFE_INTEGER): Promise<number> {
    const n = await this.u64(what);
    const fits = Math.floor(this.remaining / Math.max(1, minItemBytes));
    if (n > BigInt(fits)) this.fail(`${what} is ${n}, more than the ${this.remaining} bytes left in the file can hold (truncated or corrupt)`);
    if (n > BigInt(max)) this.fail(`${what} is ${n}, more than the ${max} allowed`);
    return Number(n);
  }

  /** A GGUF string: uint64 byte length, then UTF-8 bytes (no terminator), at most `maxBytes` long. */
  async string(what: string, maxBytes: number): Promise<string> {
    const n = await this.count(`${what}'s length`, 1, maxBytes);
    return (await this.bytes(n, what)).toString('utf8');
  }
}
