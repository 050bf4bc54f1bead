import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ReadBuffer, serializeMessage, STDIO_DEFAULT_MAX_BUFFER_SIZE } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';

/** Options of a `PipeClientTransport`. */
export interface PipeTransportOptions {
  /**
   * Largest message (one line) read from the server, bytes. A longer one cannot be delivered, and
   * its caller would wait for ever: the transport reports it and closes.
   * @default 10 MiB (the SDK's stdio limit)
   */
  maxMessageBytes?: number;
}

/** What a queued `send` waits for: the pipe's buffer to drain below its high-water mark. */
interface DrainWaiter {
  resolve(): void;
  reject(e: Error): void;
}

/**
 * An MCP client `Transport` over the stdin/stdout pipes of a process someone else started — the
 * supervisor's (`Execution.stdio`). The SDK's `StdioClientTransport` spawns its own process, out
 * of supervision; this one only talks, and closing it never signals anything.
 *
 * - `send` honours back-pressure: it resolves once the message is in the pipe's buffer below its
 *   high-water mark, else at 'drain'; it rejects once the transport is closed or the write fails.
 * - Delivery yields (setImmediate) after each notification, so a progress notification read in
 *   the same chunk as its request's response reaches its handler first: the SDK runs notification
 *   handlers a microtask late but response handlers at once, and the response deletes the progress
 *   handler (typescript-sdk #2580; with the SDK's own stdio transport the last progress of a call
 *   was lost 10 times in 10 here).
 * - stdout's end or close fires `onclose` once every complete message read was delivered; errors
 *   of either pipe (EPIPE from a server that died) go to `onerror`, and are swallowed after close.
 */
export class PipeClientTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  /** The protocol version negotiated at initialize; undefined until the client has set it. */
  protocolVersion: string | undefined;
  readonly setProtocolVersion = (version: string): void => {
    this.protocolVersion = version;
  };

  readonly #stdout: NodeJS.ReadableStream;
  readonly #stdin: NodeJS.WritableStream;
  readonly #buffer: ReadBuffer;
  readonly #waiters = new Set<DrainWaiter>();
  #started = false;
  #closed = false;
  /** stdout ended: close once what was read is delivered. */
  #ending = false;
  /** A delivery is scheduled after a yield: data arriving meanwhile only appends. */
  #yielding = false;

  constructor(stdout: NodeJS.ReadableStream, stdin: NodeJS.WritableStream, options: PipeTransportOptions = {}) {
    const max = options.maxMessageBytes ?? STDIO_DEFAULT_MAX_BUFFER_SIZE;
    if (!Number.isSafeInteger(max) || max <= 0) throw new TypeError(`Expected maxMessageBytes to be a positive integer, got ${String(max)}`);
    this.#stdout = stdout;
    this.#stdin = stdin;
    this.#buffer = new ReadBuffer({ maxBufferSize: max });
  }

  /** Whether the transport has closed (its own `close()`, or the server's stdout ended). */
  get closed(): boolean {
    return this.#closed;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('PipeClientTransport already started');
    this.#started = true;
    this.#stdout.on('data', this.#onData);
    this.#stdout.once('end', this.#onEnd);
    this.#stdout.once('close', this.#onEnd);
    // Both stay attached for good: an 'error' without a listener would crash Guild, and an EPIPE
    // can come after close (stdin.end() on a pipe whose reader is gone).
    this.#stdout.on('error', this.#onPipeError);
    this.#stdin.on('error', this.#onPipeError);
    this.#stdin.on('drain', this.#onDrain);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed || !this.#stdin.writable) {
        reject(new Error('Not connected'));
        return;
      }
      const waiter: DrainWaiter = { resolve, reject };
      let accepted: boolean;
      try {
        accepted = this.#stdin.write(serializeMessage(message), (err) => {
          if (!err) return;
          this.#waiters.delete(waiter);
          reject(err);
        });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (accepted) resolve();
      else this.#waiters.add(waiter);
    });
  }

  /** Ends stdin (a stdio MCP server's signal to exit) and closes; never signals the process. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#stdin.end();
    } catch {
      // A pipe already destroyed has nothing left to end.
    }
    this.#finish();
  }

  readonly #onData = (chunk: Buffer | string): void => {
    if (this.#closed) return;
    try {
      this.#buffer.append(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    } catch (e) {
      // A message over the limit is lost, and with it the answer some request waits for: closing
      // rejects every request in flight rather than leaving one to hang.
      this.#report(e);
      void this.close();
      return;
    }
    if (!this.#yielding) this.#deliver();
  };

  readonly #deliver = (): void => {
    this.#yielding = false;
    while (!this.#closed) {
      let message: JSONRPCMessage | null;
      try {
        message = this.#buffer.readMessage();
      } catch (e) {
        // The bad line was consumed before it was parsed: report it and go on with the next.
        this.#report(e);
        continue;
      }
      if (message === null) break;
      try {
        this.onmessage?.(message);
      } catch (e) {
        // A handler's throw must not end delivery (or, from a 'data' event, crash Guild).
        this.#report(e);
      }
      if (!('id' in message)) {
        this.#yielding = true;
        setImmediate(this.#deliver);
        return;
      }
    }
    if (this.#ending) this.#finish();
  };

  readonly #onEnd = (): void => {
    if (this.#ending) return;
    this.#ending = true;
    // Messages still queued behind a yield are delivered first: a response written just before
    // the server exited must not be turned into "Connection closed".
    if (!this.#yielding) this.#deliver();
  };

  readonly #onDrain = (): void => {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w.resolve();
  };

  readonly #onPipeError = (e: unknown): void => {
    if (!this.#closed) this.#report(e);
  };

  #report(e: unknown): void {
    this.onerror?.(e instanceof Error ? e : new Error(String(e)));
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stdout.off('data', this.#onData);
    this.#stdin.off('drain', this.#onDrain);
    this.#buffer.clear();
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w.reject(new Error('Not connected'));
    this.onclose?.();
  }
}
