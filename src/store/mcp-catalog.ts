import type { Db } from './db.js';

// What each MCP server of a folder's gateway offers, as its newest instance said: kept so that
// what the gateway learned outlives it (`guild mcp status` with no gateway running reads it).

/** One server's stored catalog entry. The offer is the gateway's own shape, stored as JSON. */
export interface StoredCatalog<Offer = unknown> {
  server: string;
  command: readonly string[];
  learnedAt: Date;
  offer: Offer;
}

/** Records (replacing) what `server` offers. */
export function saveCatalog(db: Db, server: string, command: readonly string[], offer: unknown, at = new Date()): void {
  db.prepare(
    `INSERT INTO mcp_catalog (server, command, learned_at, offer) VALUES (?, ?, ?, ?)
     ON CONFLICT (server) DO UPDATE SET command = excluded.command, learned_at = excluded.learned_at, offer = excluded.offer`,
  ).run(server, JSON.stringify(command), at.getTime(), JSON.stringify(offer));
}

/** Every stored server, by name. */
export function loadCatalog<Offer = unknown>(db: Db): StoredCatalog<Offer>[] {
  const rows = db.prepare('SELECT server, command, learned_at, offer FROM mcp_catalog ORDER BY server').all() as {
    server: string;
    command: string;
    learned_at: number;
    offer: string;
  }[];
  return rows.map((r) => ({
    server: r.server,
    command: JSON.parse(r.command) as string[],
    learnedAt: new Date(r.learned_at),
    offer: JSON.parse(r.offer) as Offer,
  }));
}
