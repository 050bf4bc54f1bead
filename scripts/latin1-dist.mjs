// After tsc: writes every character above U+00FF in dist/src/**/*.js as a \uXXXX escape.
// Why: V8 keeps each module's source in its heap for as long as the process lives, as a one-byte
// string when every character fits in Latin-1 and as a two-byte string otherwise. One em dash in a
// comment doubled a module's source; 38 of the ~100 modules a waiting `guild run` holds had one
// (344 KB of their 511 KB), ~0.35 MB of the run's RSS (bench/startup.ts). An escape means the
// same character in a string, template, regular expression or identifier, and is plain text in a
// comment; only a template's raw text (String.raw, unused in src/) would differ. Columns in the
// source maps shift on the lines it touches.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src');
let files = 0;
for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(file, 'utf8');
  if (!/[^\u0000-\u00ff]/.test(text)) continue;
  writeFileSync(file, text.replace(/[^\u0000-\u00ff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  files++;
}
if (process.argv.includes('--verbose')) console.log(`latin1-dist: ${files} file(s) escaped`);
