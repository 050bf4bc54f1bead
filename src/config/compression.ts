// What a workflow may choose for compressed cache entries. Configuration validates it and the
// cache applies what it is handed (cache/compression.ts), so it lives below both, as the
// namespace policies do (cache-policy.ts).
import * as zlib from 'node:zlib';

/** The codecs Guild can compress cache entries with. `zstd` only where the running Node has it (22.15+, 23.8+). */
export type CodecName = 'brotli' | 'gzip' | 'deflate' | 'zstd';
export const CODEC_NAMES: readonly [CodecName, ...CodecName[]] = ['brotli', 'gzip', 'deflate', 'zstd'];

/** True when this Node can compress and read zstd (feature-detected: Node 20 cannot). */
export const HAS_ZSTD =
  typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function' && typeof (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function';

/** The codecs this Node has. */
export function availableCodecs(): CodecName[] {
  return CODEC_NAMES.filter((c) => c !== 'zstd' || HAS_ZSTD);
}

/** Levels each codec accepts: brotli's quality 0–11, zlib's 1–9 (0 would store), zstd's 1–22. */
export const LEVEL_RANGE: Readonly<Record<CodecName, readonly [number, number]>> = { brotli: [0, 11], gzip: [1, 9], deflate: [1, 9], zstd: [1, 22] };

/** How the layered cache compresses. */
export interface CompressionOptions {
  /** Values of at least this many bytes are compressed; smaller ones are stored as they are. @default 4096 (DEFAULTS.cache.compression) */
  readonly thresholdBytes: number;
  /** @default 'brotli' */
  readonly codec: CodecName;
  /** The codec's level (see {@link LEVEL_RANGE}). @default 1 */
  readonly level: number;
  /**
   * The largest original a frame may declare: larger values are stored as they are, and a frame
   * declaring more is corrupt (the bound on what decompression may allocate). @default 1 GiB
   */
  readonly maxBytes?: number;
}
