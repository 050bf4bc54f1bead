/**
 * Compressed storage of cache entries: the frame a compressed value is stored in (the codecs are
 * in codecs.ts, loaded with zlib at the first value compressed or decompressed: a run whose
 * tasks store and read nothing never loads them, ~0.3 MB of its RSS).
 *
 * The layered cache compresses once, before the tiers see the bytes, so SQLite and Redis hold the
 * same stored bytes and each reads what another wrote (the memory tier keeps values uncompressed:
 * layered-cache.ts #inMemory says why, with the figures; it still reads a frame given to it). The frame records its codec and
 * the original length in the stored bytes themselves:
 *
 * ```
 * 0  3  magic C7 47 7A
 * 3  1  frame version, 1
 * 4  1  codec: 0 stored as is (escape), 1 deflate-raw, 2 gzip, 3 brotli, 4 zstd
 * 5  6  original length, uint48 big-endian
 * 11 …  payload
 * ```
 *
 * A value that is not compressed (under the threshold, or incompressible) is stored as is, with
 * no frame: that is also every entry written before frames existed, so legacy entries read as
 * they always did and small values pay nothing. The magic tells the two apart, and cannot begin a
 * value Guild stored before: C7 followed by 47 is not UTF-8 (C7 wants a continuation byte
 * 80–BF), so no JSON or text; a stale-while-revalidate value begins with a non-negative float64
 * (00 or 40–42), never C7; a task result begins with its header's u32 length (00…), not 3.3 GB.
 * A library value that happens to begin with the magic is, from now on, escaped in a frame of
 * codec 0 (11 bytes more) rather than stored bare, so a new bare value is never misread. What
 * remains is a legacy library value that began with these 3 bytes *and* carries a valid version,
 * codec and length: it is read as a frame, and fails to decode (a miss, counted corrupt) unless
 * it is one byte for byte. See NOTES-compression.md for why that is accepted over versioning keys.
 *
 * Decompression is bounded: the frame's original length must be at most `maxBytes`, and the
 * codec may not produce more than it (`maxOutputLength`), so a corrupt header or a crafted payload
 * in a shared Redis cannot make Guild allocate more than that.
 */
import type { CodecName, CompressionOptions } from '../config/compression.js';
import type { Codec } from './codecs.js';

/** Bytes of the frame before the payload. */
export const FRAME_HEADER = 11;
const MAGIC0 = 0xc7;
const MAGIC1 = 0x47;
const MAGIC2 = 0x7a;
const VERSION = 1;
const CODEC_ID: Record<CodecName, number> = { deflate: 1, gzip: 2, brotli: 3, zstd: 4 };
/** Codec ids are below this (0, the escape, included). */
const CODEC_COUNT = 5;
const ESCAPE = 0;
export const DEFAULT_MAX_BYTES = 1024 ** 3;

/**
 * A compressed value is kept only when it saves at least this share of the original: below it,
 * every read would pay a decompression to save a few bytes (random data saves nothing; brotli's
 * framing even grows it by a few bytes).
 */
const MIN_SAVING = 1 / 16;

/**
 * From this size compression runs on libuv's thread pool: a 5 MiB value takes tens of ms, which
 * would stall the event loop (the sampler, the dashboard); below it the hop costs more than the
 * work (a 64 KiB brotli-1 pass is well under a millisecond).
 */
const ASYNC_FROM = 128 * 1024;

let loading: Promise<typeof import('./codecs.js')> | undefined;
/** The codecs, loaded once, at the first value that needs one. */
const codecs = (): Promise<typeof import('./codecs.js')> => (loading ??= import('./codecs.js'));

const hasMagic = (b: Buffer): boolean => b.length >= 3 && b[0] === MAGIC0 && b[1] === MAGIC1 && b[2] === MAGIC2;

function frame(codecId: number, original: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = MAGIC2;
  out[3] = VERSION;
  out[4] = codecId;
  out.writeUIntBE(original, 5, 6);
  payload.copy(out, FRAME_HEADER);
  return out;
}

/**
 * The bytes to store for `value`: a frame when compressing saves at least {@link MIN_SAVING},
 * else `value` itself (escaped in a codec-0 frame only when it begins with the magic). Never
 * longer than `value` + {@link FRAME_HEADER}. `options` null: compression is off.
 */
export async function encodeStored(value: Buffer, options: CompressionOptions | null): Promise<Buffer> {
  if (options !== null && value.length >= options.thresholdBytes && value.length <= (options.maxBytes ?? DEFAULT_MAX_BYTES)) {
    const codec = (await codecs()).CODECS[options.codec];
    if (codec !== null) {
      const packed = value.length >= ASYNC_FROM ? await codec.compress(value, options.level) : codec.compressSync(value, options.level);
      if (FRAME_HEADER + packed.length <= value.length - value.length * MIN_SAVING) return frame(CODEC_ID[options.codec], value.length, packed);
    }
  }
  return hasMagic(value) ? frame(ESCAPE, value.length, value) : value;
}

/** `value` as stored uncompressed: itself, or escaped in a codec-0 frame when it begins with the magic. Synchronous. */
export function escapeBare(value: Buffer): Buffer {
  return hasMagic(value) ? frame(ESCAPE, value.length, value) : value;
}

/** Why stored bytes could not be read: `corrupt` (a bad frame), or `unreadable` here (a newer frame version, or zstd on a Node without it). */
export type DecodeFailure = 'corrupt' | 'unreadable';

/** The value `stored` holds, or why not. Bounded by `maxBytes` (see the module comment). */
export async function decodeStored(stored: Buffer, maxBytes: number = DEFAULT_MAX_BYTES): Promise<Buffer | DecodeFailure> {
  if (!hasMagic(stored)) return stored;
  if (stored.length < FRAME_HEADER) return 'corrupt';
  if (stored[3] !== VERSION) return stored[3]! > VERSION ? 'unreadable' : 'corrupt';
  const id = stored[4]!;
  const original = stored.readUIntBE(5, 6);
  if (original > maxBytes) return 'corrupt';
  const payload = stored.subarray(FRAME_HEADER);
  if (id === ESCAPE) return payload.length === original ? payload : 'corrupt';
  if (id >= CODEC_COUNT) return 'corrupt';
  const codec: Codec | null | undefined = (await codecs()).BY_ID[id];
  if (codec === null || codec === undefined) return 'unreadable';
  try {
    // maxOutputLength: the codec stops (RangeError) rather than produce more than the frame declared.
    const out = original >= ASYNC_FROM ? await codec.decompress(payload, Math.max(1, original)) : codec.decompressSync(payload, Math.max(1, original));
    return out.length === original ? out : 'corrupt';
  } catch {
    return 'corrupt';
  }
}

/**
 * The original length of stored bytes from their first {@link FRAME_HEADER} bytes (`head`) and
 * their whole length: the frame's declared length, or `storedLength` for a value stored as is.
 * For stats: tiers read only the head (Redis GETRANGE, SQLite at write time).
 */
export function originalLength(head: Buffer, storedLength: number): number {
  if (!hasMagic(head) || head.length < FRAME_HEADER || head[3] !== VERSION) return storedLength;
  return head.readUIntBE(5, 6);
}
