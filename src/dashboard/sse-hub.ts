/**
 * Server-sent events: the attached clients, one subscription to the source for all of them, and
 * the feeds' periodic snapshots.
 */
import type { ServerResponse } from 'node:http';
import type { Feed } from './served-state.js';
import type { DashboardSource } from './source.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  // nginx buffers proxied responses unless told not to; a buffered event stream arrives in lumps.
  'x-accel-buffering': 'no',
} as const;

/** `event:` then `data:`; a line break inside data would end the field early, so each line gets its own `data:`. */
export function sseFrame(event: string, data: string): string {
  // JSON.stringify never emits a raw line break; the check is two memchr scans, the split is the rare path.
  const body = data.includes('\n') || data.includes('\r') ? data.split(/\r\n|\r|\n/).join('\ndata: ') : data;
  return `event: ${event}\ndata: ${body}\n\n`;
}

const PING = Buffer.from(': ping\n\n');

/**
 * The attached SSE clients. One subscription to the source, whatever the number of clients, and
 * only while there is at least one; one heartbeat timer for all of them, and one timer per feed,
 * likewise.
 */
export class EventHub {
  /** Each client with the most unsent bytes it may have: the bound plus its own first write (a large state must not get a fresh client dropped on the next tick). */
  readonly #clients = new Map<ServerResponse, number>();
  readonly #source: DashboardSource;
  readonly #heartbeatMs: number;
  readonly #maxBuffered: number;
  readonly #feeds: readonly Feed[];
  #unsubscribe: (() => void) | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #feedTimers: NodeJS.Timeout[] = [];

  constructor(source: DashboardSource, heartbeatMs: number, maxBuffered: number, feeds: readonly Feed[]) {
    this.#source = source;
    this.#heartbeatMs = heartbeatMs;
    this.#maxBuffered = maxBuffered;
    this.#feeds = feeds;
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Attaches a response whose headers are written; `head` is its first write. */
  add(res: ServerResponse, head: string): void {
    // Synchronous from the state snapshot the caller took to here, so no message falls between the two.
    if (this.#clients.size === 0) {
      this.#unsubscribe = this.#source.subscribe(this.#broadcast);
      this.#heartbeat = setInterval(() => this.#sendAll(PING), this.#heartbeatMs).unref();
      this.#feedTimers = this.#feeds.map((feed) => setInterval(() => this.#sendFeed(feed), feed.intervalMs).unref());
    }
    this.#clients.set(res, this.#maxBuffered + Buffer.byteLength(head));
    res.once('close', () => this.#remove(res));
    res.write(head);
  }

  /** Ends every stream; resolves when each has flushed what it was sent (the final `end` event), or after `graceMs`. */
  closeAll(graceMs: number): Promise<void> {
    const open = [...this.#clients.keys()];
    this.#clients.clear();
    this.#stop();
    const flushed = open.map((res) => new Promise<void>((resolve) => res.end(resolve)));
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      void Promise.all(flushed).then(() => (clearTimeout(timer), resolve()));
    });
  }

  /**
   * One Buffer per message, written to every client: the string is encoded once, and the sockets
   * hold references to the same bytes instead of a copy each (a string would be encoded per socket).
   */
  readonly #broadcast = (event: string, data: string): void => {
    this.#sendAll(Buffer.from(sseFrame(event, data)));
  };

  /** A feed's snapshot is pulled, not pushed: read once per period and sent to every client. */
  #sendFeed(feed: Feed): void {
    let data: string;
    try {
      data = JSON.stringify(feed.read());
    } catch {
      return; // a snapshot that fails now may not next time; the clients keep the last one
    }
    this.#broadcast(feed.name, data);
  }

  #sendAll(chunk: Buffer): void {
    for (const [res, limit] of this.#clients) {
      // writableLength counts what neither Node nor the kernel took yet. A client that stopped
      // reading is dropped here rather than buffered for without limit, and write() never blocks;
      // EventSource reconnects and starts again from a fresh `state`.
      if (res.destroyed || res.writableLength > limit) {
        this.#remove(res);
        res.destroy();
      } else {
        res.write(chunk);
      }
    }
  }

  #remove(res: ServerResponse): void {
    // Deleting from a Map while iterating it is safe: the iteration skips what was deleted.
    if (this.#clients.delete(res) && this.#clients.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const timer of this.#feedTimers) clearInterval(timer);
    this.#feedTimers = [];
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }
}
