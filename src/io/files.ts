import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, lstat as lstatCb, readdir as readdirCb, realpath as realpathCb, type Dirent, type Stats } from 'node:fs';
import { lstat, mkdir, open, readFile, readlink, realpath, rename, stat, symlink, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { glob, type FileSystemAdapter } from 'tinyglobby';
import { GuildError } from '../errors.js';

/** Options of the batched file operations. */
export interface BatchOptions {
  /** Files open at once, over all directories. @default 16 */
  concurrency?: number;
  /** Files larger than this are hashed as a stream instead of read whole. @default 1 MiB (the seed's threshold) */
  streamAboveBytes?: number;
}

export interface FileDigest {
  /** As given (relative to the base folder). */
  readonly path: string;
  /**
   * `file`: the content was hashed (a symlink inside the project counts as the file it leads to).
   * `symlink`: a link that leads out of the project (or nowhere): its target text was hashed, the
   * link was neither followed nor read. `other`: a fifo, socket or device: its kind was hashed.
   */
  readonly type: 'file' | 'symlink' | 'other';
  readonly size: number;
  readonly mode: number;
  /** sha256, hex: of the content, the link's target text, or the kind. */
  readonly sha256: string;
}

/** A regular file: its bytes and permission bits. */
export interface RegularFileData {
  readonly type: 'file';
  readonly path: string;
  readonly mode: number;
  readonly data: Buffer;
}

/** A symbolic link: its target as written (never followed). */
export interface SymlinkData {
  readonly type: 'symlink';
  readonly path: string;
  readonly target: string;
}

/** One stored output, by its type. */
export type FileData = RegularFileData | SymlinkData;

const DEFAULT_CONCURRENCY = 16;
const STREAM_ABOVE = 1024 * 1024;
/** The kernel's limit of links followed in one path lookup (MAXSYMLINKS). */
const MAX_LINK_HOPS = 40;
/** Reads without following a last-component symlink and without blocking on a fifo. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The project folder as given and as the kernel resolves it: containment is checked on the real path. */
interface Root {
  readonly dir: string;
  readonly real: string;
}

async function rootOf(dir: string): Promise<Root> {
  const abs = resolve(dir);
  return { dir: abs, real: await realpath(abs) };
}

/** Whether `path` (absolute, normalized) is `root` or below it. */
function within(root: string, path: string): boolean {
  return path === root || root === sep || path.startsWith(root + sep);
}

const unsafe = (message: string): GuildError => new GuildError('UNSAFE_PATH', message);

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isDirectory()) return 'directory';
  return 'special file';
}

/**
 * Where `path` (absolute, possibly with `..` and links) leads, resolved component by component as
 * the kernel would, without opening anything. Where a name does not exist (a dangling link, a
 * file not made yet), the rest is taken as written: nothing there can be read today.
 */
async function resolveLoose(path: string): Promise<string> {
  let parts = path.split(sep);
  let at: string = sep;
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      at = dirname(at); // `at` is a real path: its parent is what `..` means
      continue;
    }
    const next = join(at, part);
    try {
      at = await realpath(next);
      continue;
    } catch {
      // A missing name, or a link that dangles or loops: expand the link by hand.
    }
    let target: string;
    try {
      target = await readlink(next);
    } catch {
      return resolve(next, ...parts);
    }
    if (++hops > MAX_LINK_HOPS) return resolve(next, ...parts);
    parts = [...target.split(sep), ...parts];
    if (isAbsolute(target)) at = sep;
  }
  return at;
}

/** Where the symlink `linkDirReal/<name> → target` leads (`linkDirReal` is a real path). */
const linkDestination = (linkDirReal: string, target: string): Promise<string> => resolveLoose(isAbsolute(target) ? target : `${linkDirReal}${sep}${target}`);

/** A directory of the project: its real path, and the symlink by which it leaves the project, if it does. */
interface DirInfo {
  readonly real: string;
  readonly escape: { readonly link: string; readonly target: string } | null;
}

/**
 * Looks up directories of the project (relative paths), each once per operation: one realpath
 * for the usual case of a directory inside; the component walk only to name the link that leaves.
 */
function dirLookup(root: Root): (rel: string) => Promise<DirInfo> {
  const seen = new Map<string, Promise<DirInfo>>();
  const look = async (rel: string): Promise<DirInfo> => {
    const real = await realpath(join(root.dir, rel));
    if (within(root.real, real)) return { real, escape: null };
    let at = root.real;
    let prefix = '';
    for (const part of rel.split(sep)) {
      prefix = prefix === '' ? part : `${prefix}${sep}${part}`;
      const next = join(at, part);
      const st = await lstat(next);
      if (st.isSymbolicLink()) {
        const target = await readlink(next);
        const to = await linkDestination(at, target);
        if (!within(root.real, to)) return { real, escape: { link: prefix, target } };
        at = to;
      } else at = next;
    }
    return { real, escape: { link: rel, target: real } };
  };
  return (rel) => {
    let info = seen.get(rel);
    if (!info) seen.set(rel, (info = look(rel)));
    return info;
  };
}

const escapeText = (path: string, escape: { link: string; target: string }): string =>
  escape.link === path ? `${path} is a symlink to ${escape.target}, outside the project` : `${path} is under ${escape.link}, a symlink to ${escape.target}, outside the project`;

/** A dirent that is neither file, directory nor link, shown to the walker as a link: it then lists it, never reads it. */
const listedAsLink = (d: Dirent): Dirent => (d.isFile() || d.isDirectory() || d.isSymbolicLink() ? d : Object.assign(Object.create(d) as Dirent, { isSymbolicLink: () => true }));

type Callback<T> = (error: NodeJS.ErrnoException | null, value: T) => void;

/**
 * Globs under the project without ever listing a directory outside it. The walker asks the
 * adapter where each symlink leads: `inside` follows links that stay in the project (as inputs
 * always have) and lists the others as entries, unfollowed; `never` lists every link as an entry.
 * A directory the walk would enter outside the project (a glob's static prefix through a link:
 * `out/**` with `out → /etc`) is not listed; it is returned in `escapes` instead.
 */
async function walk(patterns: readonly string[], root: Root, follow: 'inside' | 'never'): Promise<{ paths: string[]; escapes: string[] }> {
  if (patterns.length === 0) return { paths: [], escapes: [] };
  const escapes: string[] = [];
  const outside = (p: string): boolean => !within(root.real, p);
  const readdir = (p: string, options: { withFileTypes: true }, cb: Callback<Dirent[]>): void =>
    realpathCb.native(p, (error, real) => {
      if (!error && outside(real)) {
        escapes.push(p);
        return cb(null, []);
      }
      readdirCb(p, options, (e, entries) => cb(e, e || follow === 'inside' ? entries : entries.map(listedAsLink)));
    });
  const realpathOf =
    follow === 'never'
      ? (p: string, cb: Callback<string>): void => cb(null, p)
      : (p: string, cb: Callback<string>): void => realpathCb.native(p, (e, real) => cb(null, e || outside(real) ? p : real));
  // With realpath answering the link itself, lstat shows it as a link (not a directory): the walker lists it as a file.
  const fs = { readdir, realpath: realpathOf, stat: lstatCb } as unknown as FileSystemAdapter;
  const paths = await glob([...patterns], { cwd: root.dir, dot: true, onlyFiles: true, expandDirectories: false, followSymbolicLinks: true, fs });
  return { paths, escapes: escapes.map((p) => relative(root.dir, p)).filter((p) => p !== '' && !p.startsWith('..')) };
}

const sorted = (paths: Iterable<string>): string[] => [...new Set(paths)].sort();

/**
 * Input files matching `patterns` under `dir`, as sorted paths relative to it (directories
 * excluded, dotfiles included). Symlinks inside the project are followed as ever; a symlink out
 * of it (or a glob prefix that leads out) is listed itself, to be fingerprinted by its target
 * text. Sorting makes a fingerprint independent of the order in which the file system lists entries.
 */
export async function expandGlobs(patterns: readonly string[], dir: string): Promise<string[]> {
  // A glob that itself names a place outside (`../../node_modules/typescript/package.json`) is
  // the user's declaration: it is listed and read as written. Walking it with the project's
  // containment would find nothing, and a change there would go unnoticed (a stale hit).
  const named = patterns.filter(namesOutside);
  const own = patterns.filter((p) => !namesOutside(p));
  const { paths, escapes } = await walk(own, await rootOf(dir), 'inside');
  const declared = named.length > 0 ? await glob([...named], { cwd: dir, dot: true, onlyFiles: true, expandDirectories: false }) : [];
  return sorted([...paths, ...escapes, ...declared]);
}

/** A glob or path that leaves the folder by its own `..` segments (not through a link). */
const namesOutside = (p: string): boolean => normalize(p).split(/[\\/]/)[0] === '..';

/**
 * Outputs matching `patterns` under `dir`, sorted, relative: regular files, symlinks (never
 * followed) and anything else that is not a directory (which {@link readFiles} refuses). Rejects
 * with UNSAFE_PATH when a pattern's folder leads out of the project through a symlink.
 */
export async function listOutputs(patterns: readonly string[], dir: string): Promise<string[]> {
  const root = await rootOf(dir);
  const { paths, escapes } = await walk(patterns, root, 'never');
  if (escapes.length > 0) {
    const rel = escapes.sort()[0]!;
    const info = await dirLookup(root)(rel);
    throw unsafe(escapeText(rel, info.escape ?? { link: rel, target: info.real }));
  }
  return sorted(paths);
}

const same = (p: string): string => p;

/**
 * Orders items directory by directory (the seed's grouping: files of one directory are read
 * together, so directory lookups stay warm) and runs `work` over them with at most
 * `concurrency` in flight. Results come back in the order of `paths`.
 */
export async function inBatches<I, T>(items: readonly I[], pathOf: (item: I) => string, concurrency: number, work: (item: I) => Promise<T>): Promise<T[]> {
  const byDir = new Map<string, number[]>();
  items.forEach((item, i) => {
    const d = dirname(pathOf(item));
    const list = byDir.get(d);
    if (list) list.push(i);
    else byDir.set(d, [i]);
  });
  const order = [...byDir.values()].flat();
  const results = new Array<T>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < order.length) {
      const i = order[next++]!;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), order.length) }, worker));
  return results;
}

/** Opens a regular file for reading, never through a last-component link; null when it is not one. */
async function openRegular(full: string): Promise<{ fh: FileHandle; st: Stats } | null> {
  const fh = await open(full, READ_FLAGS);
  const st = await fh.stat();
  if (st.isFile()) return { fh, st };
  await fh.close();
  return null;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * sha256 of each input under `dir`: small files read whole, large ones streamed (bounded memory).
 *
 * Nothing outside the project is read: a link that leads out is hashed by its target text. A
 * fingerprint is a key other checkouts see (a shared Redis), so hashing a file outside would
 * publish a digest of it (a guessable secret such as /etc/hostname is then confirmed by its key);
 * and what lies outside may never end (`/dev/zero`, a fifo) or belong to nobody in the project.
 * Links inside the project are followed: they are the project's own files under another name.
 */
export async function hashFiles(paths: readonly string[], dir: string, options: BatchOptions = {}): Promise<FileDigest[]> {
  const root = await rootOf(dir);
  const dirOf = dirLookup(root);
  const streamAbove = options.streamAboveBytes ?? STREAM_ABOVE;
  const textDigest = (path: string, type: 'symlink' | 'other', text: string): FileDigest => ({ path, type, size: 0, mode: 0, sha256: sha256(text) });
  return inBatches(paths, same, options.concurrency ?? DEFAULT_CONCURRENCY, async (path) => {
    // Declared outside by the user (see expandGlobs): read as written.
    if (namesOutside(path)) return hashDeclared(path, resolve(dir, path), streamAbove);
    const parent = await dirOf(dirname(path));
    if (parent.escape) return textDigest(path, 'symlink', `${parent.escape.link} -> ${parent.escape.target}`);
    const full = join(parent.real, basename(path));
    const lst = await lstat(full);
    let opened: { fh: FileHandle; st: Stats } | null;
    if (lst.isSymbolicLink()) {
      const target = await readlink(full);
      const to = await linkDestination(parent.real, target);
      if (!within(root.real, to)) return textDigest(path, 'symlink', target);
      // Inside: the file it leads to; a link that dangles (or leads to no regular file) is its target text.
      opened = await openRegular(to).catch(() => null);
      if (!opened) return textDigest(path, 'symlink', target);
    } else {
      opened = await openRegular(full).catch(() => null);
      if (!opened) return textDigest(path, 'other', kindOf(lst));
    }
    const { fh, st } = opened;
    const hash = createHash('sha256');
    if (st.size > streamAbove) {
      // The stream closes the handle when it ends or fails.
      for await (const chunk of fh.createReadStream({ highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
    } else {
      try {
        hash.update(await fh.readFile());
      } finally {
        await fh.close();
      }
    }
    return { path, type: 'file', size: st.size, mode: st.mode & 0o777, sha256: hash.digest('hex') };
  });
}

/** An input the user named outside the project, hashed as it is (following links, as before links were handled). */
async function hashDeclared(path: string, full: string, streamAbove: number): Promise<FileDigest> {
  const st = await stat(full);
  const hash = createHash('sha256');
  if (st.size > streamAbove) for await (const chunk of createReadStream(full, { highWaterMark: 256 * 1024 })) hash.update(chunk as Buffer);
  else hash.update(await readFile(full));
  return { path, type: 'file', size: st.size, mode: st.mode & 0o777, sha256: hash.digest('hex') };
}

/**
 * Reads outputs under `dir` in directory batches, each as what it is: a regular file (bytes and
 * mode) or a symlink (its target text, never followed). Directories are skipped. Rejects with
 * UNSAFE_PATH for a symlink that leads out of the project (directly, with `..`, or through another
 * link), a path under such a link, and anything else (fifo, socket, device): none is read.
 */
export async function readFiles(paths: readonly string[], dir: string, options: BatchOptions = {}): Promise<FileData[]> {
  const root = await rootOf(dir);
  const dirOf = dirLookup(root);
  const read = await inBatches(paths, same, options.concurrency ?? DEFAULT_CONCURRENCY, async (path): Promise<FileData | null> => {
    const parent = await dirOf(dirname(path));
    if (parent.escape) throw unsafe(escapeText(path, parent.escape));
    const full = join(parent.real, basename(path));
    const st = await lstat(full);
    if (st.isDirectory()) return null;
    if (st.isSymbolicLink()) {
      const target = await readlink(full);
      if (!within(root.real, await linkDestination(parent.real, target))) throw unsafe(escapeText(path, { link: path, target }));
      return { type: 'symlink', path, target };
    }
    if (!st.isFile()) throw unsafe(`${path} is a ${kindOf(st)}, neither a file nor a symlink`);
    const opened = await openRegular(full);
    if (!opened || opened.st.ino !== st.ino || opened.st.dev !== st.dev) {
      await opened?.fh.close();
      throw new Error(`${path} was replaced while it was read`);
    }
    try {
      return { type: 'file', path, mode: opened.st.mode & 0o777, data: await opened.fh.readFile() };
    } finally {
      await opened.fh.close();
    }
  });
  return read.filter((f): f is FileData => f !== null);
}

/** A path an entry may name: relative, normalized, no `..`: anything else is refused before writing. */
function checkEntryPath(path: string): void {
  const parts = path.split(sep);
  if (path === '' || path.includes('\0') || isAbsolute(path) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw unsafe(`${JSON.stringify(path)} is not a relative path inside the project`);
  }
}

/** A link target as written must stay in the project: checked on the text, before anything is written. */
function checkLinkText(root: Root, link: SymlinkData): void {
  const { path, target } = link;
  const to = isAbsolute(target) ? normalize(target) : join(root.dir, dirname(path), target);
  if (target === '' || target.includes('\0') || !(within(root.dir, to) || within(root.real, to))) throw unsafe(escapeText(path, { link: path, target }));
}

/**
 * Makes the directory `rel` of the project (like `mkdir -p`) for `forPath` (named in a refusal)
 * and returns its real path. Each
 * component is looked at before anything is made in it: a symlink that leads out is refused, so
 * not even a directory is made outside.
 */
async function makeDir(root: Root, rel: string, forPath: string): Promise<string> {
  let at = root.real;
  if (rel === '.') return at;
  let prefix = '';
  for (const part of rel.split(sep)) {
    prefix = prefix === '' ? part : `${prefix}${sep}${part}`;
    const next = join(at, part);
    let st: Stats | null = null;
    try {
      st = await lstat(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st === null) {
      await mkdir(next).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      st = await lstat(next);
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(next);
      const to = await linkDestination(at, target);
      if (!within(root.real, to)) throw unsafe(escapeText(forPath, { link: prefix, target }));
      at = to;
    } else at = next;
  }
  return at;
}

/** A name beside `dest` that nothing else uses: the temporary of an atomic replace. */
const tempBeside = (dest: string): string => join(dirname(dest), `.guild-${randomBytes(8).toString('hex')}.tmp`);

/**
 * Puts `make(tmp)`'s result at `dest` with rename(2): it replaces whatever `dest` is (a symlink
 * itself, never its target), and a reader sees the old or the new, never a part.
 */
async function replace(dest: string, make: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempBeside(dest);
  try {
    await make(tmp);
    await rename(tmp, dest);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Writes a fresh file (O_EXCL: never an existing file or link) with its bytes and mode. */
async function writeNew(path: string, data: Buffer, mode: number): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode & 0o777);
  } finally {
    await fh.close();
  }
}

/**
 * Restores outputs under `dir`: regular files byte for byte with their modes, symlinks as links
 * with their targets. Nothing is written through a symlink or outside the project: every path is
 * checked before anything is written (relative, no `..`; link targets inside), each directory is
 * made component by component refusing links that leave, and each output is made beside its
 * destination and renamed over it. Rejects with UNSAFE_PATH on a refusal.
 */
export async function writeFiles(files: readonly FileData[], dir: string, options: BatchOptions = {}): Promise<void> {
  const root = await rootOf(dir);
  for (const f of files) checkEntryPath(f.path);
  const links = files.filter((f): f is SymlinkData => f.type === 'symlink');
  for (const l of links) checkLinkText(root, l);
  const dirs = new Map<string, Promise<string>>();
  const dirOf = (path: string): Promise<string> => {
    const rel = dirname(path);
    let real = dirs.get(rel);
    if (!real) dirs.set(rel, (real = makeDir(root, rel, path)));
    return real;
  };
  const regular = files.filter((f): f is RegularFileData => f.type === 'file');
  await inBatches(regular, (f) => f.path, options.concurrency ?? DEFAULT_CONCURRENCY, async (f) => {
    const dest = join(await dirOf(f.path), basename(f.path));
    await replace(dest, (tmp) => writeNew(tmp, f.data, f.mode));
  });
  // Links last and one by one: each is checked against the tree as it now is, links made before included.
  const made: { link: SymlinkData; dirReal: string }[] = [];
  for (const link of links) {
    const dirReal = await dirOf(link.path);
    if (!within(root.real, await linkDestination(dirReal, link.target))) throw unsafe(escapeText(link.path, { link: link.path, target: link.target }));
    await replace(join(dirReal, basename(link.path)), (tmp) => symlink(link.target, tmp));
    made.push({ link, dirReal });
  }
  // A link checked early may lead out through one made after it (`a → d/../x`, then `d → ../..`): look again.
  const escaped: SymlinkData[] = [];
  for (const { link, dirReal } of made) {
    if (within(root.real, await linkDestination(dirReal, link.target))) continue;
    escaped.push(link);
    await unlink(join(dirReal, basename(link.path)));
  }
  if (escaped.length > 0) throw unsafe(escapeText(escaped[0]!.path, { link: escaped[0]!.path, target: escaped[0]!.target }));
}
