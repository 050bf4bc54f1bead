import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { HAS_ZSTD, type CodecName } from '../config/compression.js';

/**
 * The cache's codecs over Node's zlib (compression.ts holds the frame and loads this at the first
 * value it compresses or decompresses). Ids in a frame: 1 deflate-raw, 2 gzip, 3 brotli, 4 zstd.
 */

export interface Codec {
  compressSync(b: Buffer, level: number): Buffer;
  compress(b: Buffer, level: number): Promise<Buffer>;
  decompressSync(b: Buffer, max: number): Buffer;
  decompress(b: Buffer, max: number): Promise<Buffer>;
}

type ZstdZlib = typeof zlib & {
  zstdCompressSync?: (b: Buffer, o?: object) => Buffer;
  zstdDecompressSync?: (b: Buffer, o?: object) => Buffer;
  zstdCompress?: (b: Buffer, o: object, cb: (e: Error | null, r: Buffer) => void) => void;
  zstdDecompress?: (b: Buffer, o: object, cb: (e: Error | null, r: Buffer) => void) => void;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};
const z = zlib as ZstdZlib;


const brotliOpts = (b: Buffer, level: number): zlib.BrotliOptions => ({
  params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: level,
    // The size is known: brotli picks its window from it instead of allocating for 4 MiB.
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length,
  },
});

/**
 * The output chunk of the thread-pool calls: zlib's default 16 KiB costs one round trip to the
 * event loop per chunk (320 for a 5 MiB value: measured 5–8× slower than the sync call); the
 * output size is known (the original when decompressing, at most about the input when
 * compressing), so one chunk mostly does. Capped so a corrupt frame cannot make it allocate more.
 */
const chunk = (n: number): number => Math.min(Math.max(n, 64 * 1024), 8 * 1024 * 1024);

const pBrotli = promisify(zlib.brotliCompress);
const pUnbrotli = promisify(zlib.brotliDecompress);
const pGzip = promisify(zlib.gzip);
const pGunzip = promisify(zlib.gunzip);
const pDeflateRaw = promisify(zlib.deflateRaw);
const pInflateRaw = promisify(zlib.inflateRaw);

export const CODECS: Record<CodecName, Codec | null> = {
  brotli: {
    compressSync: (b, level) => zlib.brotliCompressSync(b, brotliOpts(b, level)),
    compress: (b, level) => pBrotli(b, { ...brotliOpts(b, level), chunkSize: chunk(b.length) }),
    decompressSync: (b, max) => zlib.brotliDecompressSync(b, { maxOutputLength: max }),
    decompress: (b, max) => pUnbrotli(b, { maxOutputLength: max, chunkSize: chunk(max) }),
  },
  gzip: {
    compressSync: (b, level) => zlib.gzipSync(b, { level }),
    compress: (b, level) => pGzip(b, { level, chunkSize: chunk(b.length) }),
    decompressSync: (b, max) => zlib.gunzipSync(b, { maxOutputLength: max }),
    decompress: (b, max) => pGunzip(b, { maxOutputLength: max, chunkSize: chunk(max) }),
  },
  deflate: {
    compressSync: (b, level) => zlib.deflateRawSync(b, { level }),
    compress: (b, level) => pDeflateRaw(b, { level, chunkSize: chunk(b.length) }),
    decompressSync: (b, max) => zlib.inflateRawSync(b, { maxOutputLength: max }),
    decompress: (b, max) => pInflateRaw(b, { maxOutputLength: max, chunkSize: chunk(max) }),
  },
  zstd: HAS_ZSTD
    ? (() => {
        const opts = (level: number): object => ({ params: { [z.constants.ZSTD_c_compressionLevel ?? 100]: level } });
        const pz = promisify(z.zstdCompress!) as (b: Buffer, o: object) => Promise<Buffer>;
        const pu = promisify(z.zstdDecompress!) as (b: Buffer, o: object) => Promise<Buffer>;
        return {
          compressSync: (b: Buffer, level: number) => z.zstdCompressSync!(b, opts(level)),
          compress: (b: Buffer, level: number) => pz(b, opts(level)),
          decompressSync: (b: Buffer, max: number) => z.zstdDecompressSync!(b, { maxOutputLength: max }),
          decompress: (b: Buffer, max: number) => pu(b, { maxOutputLength: max }),
        };
      })()
    : null,
};
/** By frame codec id (0, the escape, has none). */
export const BY_ID: readonly (Codec | null)[] = [null, CODECS.deflate, CODECS.gzip, CODECS.brotli, CODECS.zstd];

/** Compresses `value` with `codec` at `level`, no frame (the benchmark compares codecs with it). */
export function compressRaw(codec: CodecName, level: number, value: Buffer): Buffer {
  const c = CODECS[codec];
  if (c === null) throw new Error(`codec ${codec} is not available in Node ${process.version}`);
  return c.compressSync(value, level);
}

/** Decompresses what {@link compressRaw} produced. */
export function decompressRaw(codec: CodecName, value: Buffer, maxBytes: number): Buffer {
  const c = CODECS[codec];
  if (c === null) throw new Error(`codec ${codec} is not available in Node ${process.version}`);
  return c.decompressSync(value, maxBytes);
}
