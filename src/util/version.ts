import { readFileSync } from 'node:fs';

let version: string | undefined;

/** Guild's version, from its package.json (read once; this file runs from dist/src/util/). */
export function guildVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}
