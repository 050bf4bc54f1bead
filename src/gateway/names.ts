// How the gateway names what its backends offer: `<server>__<name>` for servers with `prefix`,
// the backend's own name otherwise, within MCP's 128-character limit for names.

/** MCP's limit on tool and prompt names (the 2025-11-25 spec: 1–128 characters). */
export const NAME_LIMIT = 128;
export const SEPARATOR = '__';

/** Where an exposed name leads. */
export interface Route {
  server: string;
  /** The backend's own name. */
  name: string;
}

/** One server as naming sees it. */
export interface NamedServer {
  name: string;
  prefix: boolean;
}

/**
 * Exposed names ↔ (server, backend name), for one kind (tools or prompts). Prefixed names are
 * resolved by their prefix; unprefixed ones through the names the backends offered last. With a
 * single unprefixed server, an unknown name goes to it unchanged (its own "unknown tool" answer
 * is what a client would get without the gateway).
 */
export class NameMap {
  readonly #prefixed = new Map<string, NamedServer>();
  readonly #plain: NamedServer[];
  /** Exposed name → route, for unprefixed servers' current names. */
  #plainNames = new Map<string, Route>();

  constructor(servers: readonly NamedServer[]) {
    for (const s of servers) if (s.prefix) this.#prefixed.set(s.name, s);
    this.#plain = servers.filter((s) => !s.prefix);
  }

  /** The exposed name of `name` offered by `server`; null when it would pass the limit. */
  expose(server: NamedServer, name: string): string | null {
    const exposed = server.prefix ? `${server.name}${SEPARATOR}${name}` : name;
    return exposed.length <= NAME_LIMIT ? exposed : null;
  }

  /** Learn the names unprefixed servers offer now: `offered(server)` → their backend names. Earlier servers win a clash. */
  learn(offered: (server: string) => readonly string[]): void {
    const next = new Map<string, Route>();
    for (const s of this.#plain) for (const name of offered(s.name)) if (!next.has(name)) next.set(name, { server: s.name, name });
    this.#plainNames = next;
  }

  /** Where an exposed name goes; null when no server offers it. */
  resolve(exposed: string): Route | null {
    const at = exposed.indexOf(SEPARATOR);
    if (at > 0) {
      const s = this.#prefixed.get(exposed.slice(0, at));
      if (s !== undefined) return { server: s.name, name: exposed.slice(at + SEPARATOR.length) };
    }
    const plain = this.#plainNames.get(exposed);
    if (plain !== undefined) return plain;
    if (this.#plain.length === 1 && this.#prefixed.size === 0) return { server: this.#plain[0]!.name, name: exposed };
    return null;
  }
}
