/** Fields of /proc/meminfo that Guild uses, in bytes. */
export interface MemInfo {
  totalBytes: number;
  availableBytes: number;
  freeBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

/** Parses /proc/meminfo text (values are in kB = 1024 bytes). */
export function parseMeminfo(text: string): MemInfo {
  const get = (key: string): number | undefined => {
    const i = text.indexOf(`${key}:`);
    if (i < 0) return undefined;
    const m = /:\s*(\d+)/.exec(text.slice(i, i + 64));
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const totalBytes = get('MemTotal') ?? 0;
  const freeBytes = get('MemFree') ?? 0;
  // Kernels before 3.14 lack MemAvailable; approximate it the way `free` used to.
  const availableBytes = get('MemAvailable') ?? freeBytes + (get('Cached') ?? 0) + (get('Buffers') ?? 0);
  return {
    totalBytes,
    availableBytes,
    freeBytes,
    swapTotalBytes: get('SwapTotal') ?? 0,
    swapFreeBytes: get('SwapFree') ?? 0,
  };
}
