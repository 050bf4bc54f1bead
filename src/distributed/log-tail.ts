import { closeSync, openSync, readSync } from 'node:fs';

/** At most this many bytes leave per look; a task writing faster is seen whole in its pack at the end. */
const MAX_CHUNK_BYTES = 64 * 1024;

/**
 * Follows a file that grows (a task's log) and hands on what was appended, every `everyMs` and
 * once more at `stop()`. Lines are not split: text up to the last newline leaves, the rest waits
 * (unless it alone fills a chunk). Bytes skipped past MAX_CHUNK_BYTES per look are not sent.
 */
export class LogTail {
  readonly #file: string;
  readonly #send: (text: string) => void;
  readonly #timer: NodeJS.Timeout;
  #at = 0;

  constructor(file: string, send: (text: string) => void, everyMs = 500) {
    this.#file = file;
    this.#send = send;
    this.#timer = setInterval(() => this.#look(false), everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#look(true);
  }

  #look(final: boolean): void {
    let fd: number;
    try {
      fd = openSync(this.#file, 'r');
    } catch {
      return; // not created yet
    }
    try {
      const buf = Buffer.alloc(MAX_CHUNK_BYTES);
      const n = readSync(fd, buf, 0, buf.length, this.#at);
      if (n === 0) return;
      const lastNewline = buf.lastIndexOf(0x0a, n - 1);
      const end = final || lastNewline < 0 ? (final || n === buf.length ? n : 0) : lastNewline + 1;
      if (end === 0) return;
      this.#at += end;
      this.#send(buf.subarray(0, end).toString('utf8'));
    } finally {
      closeSync(fd);
    }
  }
}
