import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * Reads small /proc and cgroup files, keeping their descriptors open between reads.
 *
 * Why: the sampler reads the same files several times a second; `pread(fd, 0)` on a kept-open
 * descriptor costs one syscall where `readFileSync` costs open + fstat + read + close. For a
 * /proc/<pid>/… file the descriptor is bound to that process: once it dies the read fails with
 * ESRCH, even if the pid is reused, so a stale descriptor can never report another process.
 */
/**
 * One buffer for every synchronous read of /proc in this process (each reader here, and the
 * environ scan of proc-scan.ts): reads are synchronous, so no two can overlap. A buffer per reader
 * was 64 KB per running task: every task's container keeps a reader.
 */
export const PROC_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class ProcReader {
  readonly #fds = new Map<string, number>();
  readonly #buf = PROC_READ_BUFFER;
  readonly #maxCached: number;

  constructor(maxCached = 4096) {
    this.#maxCached = maxCached;
  }

  /** The file's text, or null when it does not exist (or its process is gone). */
  read(path: string): string | null {
    let fd = this.#fds.get(path);
    try {
      if (fd === undefined) {
        fd = openSync(path, 'r');
        if (this.#fds.size >= this.#maxCached) this.#evictOne();
        this.#fds.set(path, fd);
      }
      const n = readSync(fd, this.#buf, 0, this.#buf.length, 0);
      if (n === this.#buf.length) return readFileSync(path, 'utf8'); // larger than the buffer: rare
      return this.#buf.toString('utf8', 0, n);
    } catch {
      if (fd !== undefined) this.#drop(path, fd);
      return null;
    }
  }

  /** Reads without caching the descriptor (files read once or rarely). */
  readOnce(path: string): string | null {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  }

  /** Closes every cached descriptor whose path starts with `prefix` (a process that ended). */
  forget(prefix: string): void {
    for (const [path, fd] of this.#fds) if (path.startsWith(prefix)) this.#drop(path, fd);
  }

  get openCount(): number {
    return this.#fds.size;
  }

  close(): void {
    for (const [path, fd] of this.#fds) this.#drop(path, fd);
  }

  #evictOne(): void {
    const first = this.#fds.entries().next();
    if (!first.done) this.#drop(first.value[0], first.value[1]);
  }

  #drop(path: string, fd: number): void {
    this.#fds.delete(path);
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }
}
