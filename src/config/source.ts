import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError, ConfigErrors } from '../errors.js';

/** A key path inside a YAML document: map keys and sequence indexes. */
export type KeyPath = readonly (string | number)[];

/** Renders a key path as users read it: `agents.analyzer.memory`, `tasks[3].needs`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/**
 * A parsed YAML text that remembers where each key stands, so that any later stage can name
 * the line of a problem. `lineOffset` shifts lines for YAML embedded in another file.
 */
export class YamlSource {
  readonly file: string;
  readonly data: unknown;
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #lineOffset: number;

  private constructor(file: string, doc: Document, lines: LineCounter, lineOffset: number) {
    this.file = file;
    this.#doc = doc;
    this.#lines = lines;
    this.#lineOffset = lineOffset;
    this.data = doc.toJS({ maxAliasCount: 100 });
  }

  /** Parses YAML text; syntax errors become ConfigErrors with their line and column. */
  static parse(file: string, text: string, lineOffset = 0): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ConfigErrors(
        doc.errors.map((e) => {
          const pos = lines.linePos(e.pos[0]);
          return new ConfigError({ file, line: pos.line + lineOffset, column: pos.col }, `invalid YAML: ${e.message.split('\n')[0]}`);
        }),
      );
    }
    return new YamlSource(file, doc, lines, lineOffset);
  }

  /**
   * Line and column of the value at `path` (or of its key when `key` is true). Falls back to the
   * nearest ancestor that exists, so a missing key points at the map that lacks it.
   */
  locate(path: KeyPath, key = false): { line: number; column: number } | undefined {
    let node: unknown = this.#doc.contents;
    let keyNode: unknown;
    let best: unknown = node;
    for (const seg of path) {
      keyNode = undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else {
        break;
      }
      if (node === undefined || node === null) {
        best = keyNode ?? best;
        break;
      }
      best = key && keyNode ? keyNode : node;
    }
    const range = (best as YamlNode | undefined)?.range;
    if (!range) return undefined;
    const pos = this.#lines.linePos(range[0]);
    return { line: pos.line + this.#lineOffset, column: pos.col };
  }

  /** A ConfigError that names this file, the line of `path` and the key. */
  error(path: KeyPath, message: string, opts: { key?: boolean } = {}): ConfigError {
    const pos = this.locate(path, opts.key ?? false);
    return new ConfigError(
      { file: this.file, ...(pos ? { line: pos.line, column: pos.column } : {}), key: path.length ? formatKeyPath(path) : undefined },
      message,
    );
  }
}
