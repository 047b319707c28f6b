// The LoRA library: a folder of .safetensors files, scanned at start and watched, each file
// named, described and checked against the SD 1.5 model in the background, searchable, and
// open to admin uploads.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants, type Dirent, type FSWatcher, type Stats, watch } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { closestNames } from '../../commands/compose/closest.ts';
import { formatBytes, unknownLoraMessage } from '../../commands/loras.ts';
import type { LoraLibraryView, LoraPreview } from '../../commands/ports.ts';
import type { BaseWeights } from '../../engine/lora/targets.ts';
import { pickledFileProblem } from '../../engine/weights/safetensors.ts';
import { type CheckOutcome, checkLora, hashFile, type LoraCheck } from './check.ts';
import { buildEntry, displayNameOf, type LoraEntry, type ScannedFile } from './entry.ts';
import { type HeaderOutcome, readHeaderOutcome } from './header.ts';
import { assignNames, type NameClaim, slugify } from './names.ts';
import { searchEntries } from './search.ts';
import {
  dataUrlBytes,
  IMAGE_EXTENSION,
  parseSidecar,
  previewNames,
  type Sidecar,
  sniffImage,
} from './sidecar.ts';

export type { LoraCheck } from './check.ts';
export type { LoraEntry, TriggerSource } from './entry.ts';
export { LORA_NAME, MAX_NAME_LENGTH, slugify } from './names.ts';
export { MAX_QUERY_LENGTH, normaliseQuery } from './search.ts';

export interface LoraLibraryOptions {
  /** watch the folder and rescan on changes (default true) */
  watch?: boolean;
  /** quiet time after a change on disk before rescanning (default 300 ms) */
  debounceMs?: number;
  /** full rescan period, for filesystems where watching misses changes; 0 turns it off (default 60 s) */
  rescanIntervalMs?: number;
  /** largest file add() takes (default 256 MiB, the LORA_UPLOAD_MAX_MB default) */
  maxAddBytes?: number;
  /**
   * Reads a LoRA against the model, e.g. on another thread (a large file takes a good part of a
   * second); default: in this thread, against `base`. Used only while a base is set.
   */
  checker?: (path: string) => Promise<CheckOutcome>;
  /**
   * Reads a LoRA's safetensors header, e.g. on another thread (a hostile header of tens of MB
   * takes seconds to parse); default: in this thread.
   */
  headerReader?: (path: string) => Promise<HeaderOutcome>;
  /** hears every warning, from the first scan on (a listener added after open() misses that scan's) */
  onWarning?: (message: string) => void;
}

/** Names that appeared, disappeared or changed (file, sidecar, preview or check) since the last event. */
export interface LibraryChange {
  added: string[];
  removed: string[];
  changed: string[];
}

interface LibraryEvents {
  change: [LibraryChange];
  /** something the operator should know (an unreadable folder, a watcher that died); never thrown */
  warning: [string];
}

export interface AddOptions {
  /** replace a LoRA of the same name */
  replace?: boolean;
  /** written as `<name>.json` beside the file (civitai-style fields, see sidecar.ts) */
  sidecar?: Record<string, unknown>;
  /** written as `<name>.preview.<extension>` */
  preview?: { data: Uint8Array; extension: string };
}

export type AddResult = { ok: true; entry: LoraEntry; replaced: boolean } | { ok: false; message: string };

export type RemoveResult = { ok: true; entry: LoraEntry } | { ok: false; message: string };

export type PreviewResult = LoraPreview;

const LORA_EXTENSION = '.safetensors';
// Pickled LoRAs are listed (as unusable, saying how to convert them) so nobody wonders where theirs went.
const PICKLE_EXTENSIONS = new Set(['.ckpt', '.pt', '.pth']);
const SIDECAR_SUFFIXES = ['.json', '.civitai.info'];
const MIB = 1024 * 1024;
// While a long background check runs, listeners hear of its progress this often.
const CHANGE_EVENT_EVERY_MS = 2000;

export class LoraLibrary extends EventEmitter<LibraryEvents> implements LoraLibraryView {
  private scans = new Map<string, ScannedFile>();
  /** file → name, kept while the process runs so names stay stable */
  private held = new Map<string, string>();
  private entries: LoraEntry[] = [];
  private byName = new Map<string, LoraEntry>();
  private usableNames: string[] = [];
  private versions = new Map<string, string>();
  /** keyed by ScannedFile.stamp, so a changed file is checked again */
  private checks = new Map<string, LoraCheck>();
  private hashes = new Map<string, string>();
  private queue = new Set<string>();
  private pumping: Promise<void> | undefined;
  private running: Promise<LibraryChange> | undefined;
  private queued: Promise<LibraryChange> | undefined;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private closed = false;
  /** files the last scan passed over (folders, pipes, dangling links), with why */
  private skipped = new Map<string, string>();
  /** file → the refusal last logged for it, so each is logged once */
  private reported = new Map<string, string>();

  private constructor(
    readonly dir: string,
    private base: BaseWeights | undefined,
    private readonly options: Required<Omit<LoraLibraryOptions, 'checker' | 'headerReader' | 'onWarning'>> &
      Pick<LoraLibraryOptions, 'checker' | 'headerReader'>,
  ) {
    super();
  }

  /**
   * Scans `dir` (created if missing) and starts watching it. Without `base` the files are
   * listed from their headers and marked unchecked; with it they are checked in the background.
   */
  static async open(
    dir: string,
    base: BaseWeights | undefined,
    options: LoraLibraryOptions = {},
  ): Promise<LoraLibrary> {
    const folder = resolve(dir);
    await mkdir(folder, { recursive: true });
    if (!(await stat(folder)).isDirectory()) {
      throw new Error(
        `the LoRA folder ${folder} is a file, not a folder; point the LoRA folder setting at a folder`,
      );
    }
    const library = new LoraLibrary(folder, base, {
      watch: options.watch ?? true,
      debounceMs: options.debounceMs ?? 300,
      rescanIntervalMs: options.rescanIntervalMs ?? 60_000,
      maxAddBytes: options.maxAddBytes ?? 256 * MIB,
      checker: options.checker,
      headerReader: options.headerReader,
    });
    if (options.onWarning) library.on('warning', options.onWarning);
    await library.rescan();
    library.startWatching();
    return library;
  }

  /** Names /compose may use: every LoRA not ruled out, sorted. */
  names(): readonly string[] {
    return this.usableNames;
  }

  /** Every LoRA, usable or not, sorted by name. */
  list(): readonly LoraEntry[] {
    return this.entries;
  }

  /** The LoRA called `name` (any case, with or without < >; a display name works too). */
  get(name: string): LoraEntry | undefined {
    const key = name
      .trim()
      .replace(/^<\s*|\s*>$/g, '')
      .toLowerCase();
    return this.byName.get(key) ?? this.byName.get(slugify(key));
  }

  /** A LoRA that is listed but cannot be used, with its reason (for /compose's answer). */
  unusable(name: string): { name: string; reason: string } | undefined {
    const entry = this.get(name);
    if (entry?.check.state !== 'unusable') return undefined;
    return { name: entry.name, reason: entry.check.reason };
  }

  /** Up to `max` names near a mistyped one, best first. */
  closest(name: string, max = 3): string[] {
    const byText = new Map<string, string>();
    for (const e of this.entries) {
      byText.set(e.name, e.name);
      if (!byText.has(e.displayName)) byText.set(e.displayName, e.name);
    }
    const near = closestNames(name.trim(), byText.keys(), Number.POSITIVE_INFINITY).map(
      (t) => byText.get(t)!,
    );
    return [...new Set(near)].slice(0, max);
  }

  /** LoRAs matching `query` by name, display name, trigger or tag, best first. */
  search(query: string): LoraEntry[] {
    return searchEntries(this.entries, query);
  }

  /** Checks a LoRA still waiting for the background check now, and returns its entry. */
  async check(name: string): Promise<LoraEntry | undefined> {
    const entry = this.get(name);
    if (entry?.check.state !== 'pending' || !this.base) return entry;
    const scan = this.scans.get(entry.file)!;
    this.queue.delete(scan.file);
    this.record(scan.stamp, await this.runCheck(scan.path));
    this.emitChange(this.rebuild());
    return this.get(entry.name);
  }

  private runCheck(path: string): Promise<CheckOutcome> {
    if (this.options.checker) return this.options.checker(path);
    return Promise.resolve(checkLora(path, this.base!));
  }

  /** Resolves once no scan and no background check is under way. */
  async settled(): Promise<void> {
    for (;;) {
      const busy = this.queued ?? this.running ?? this.pumping;
      if (!busy) return;
      await busy.catch(() => undefined);
    }
  }

  /** Sets (or clears) the model LoRAs are checked against; every file is checked again. */
  setBase(base: BaseWeights | undefined): void {
    this.base = base;
    this.checks.clear();
    this.queueChecks();
    this.emitChange(this.rebuild());
    void this.pump();
  }

  /** The LoRA's preview picture, if it has one and it fits in `maxBytes`. */
  async preview(name: string, maxBytes = Number.POSITIVE_INFINITY): Promise<PreviewResult | undefined> {
    const entry = this.get(name);
    if (!entry?.preview) return undefined;
    let data: Uint8Array | undefined;
    let what: string;
    if (entry.preview.kind === 'file') {
      what = entry.preview.path.slice(this.dir.length + 1);
      try {
        const size = (await stat(entry.preview.path)).size;
        if (size > maxBytes)
          return {
            ok: false,
            problem: `${what} is ${formatBytes(size)}, over the ${formatBytes(maxBytes)} a reply can carry`,
          };
        data = new Uint8Array(await readFile(entry.preview.path));
      } catch {
        return { ok: false, problem: `${what} could not be read` };
      }
    } else {
      what = 'the thumbnail in its metadata';
      data = dataUrlBytes(entry.metadata['modelspec.thumbnail'] ?? '');
      if (data && data.byteLength > maxBytes) {
        return {
          ok: false,
          problem: `${what} is ${formatBytes(data.byteLength)}, over the ${formatBytes(maxBytes)} a reply can carry`,
        };
      }
    }
    const mime = data && sniffImage(data);
    if (!data || !mime) return { ok: false, problem: `${what} is not a PNG, JPEG, WebP or GIF picture` };
    return { ok: true, image: { data, mime, filename: `${entry.name}-preview.${IMAGE_EXTENSION[mime]}` } };
  }

  /**
   * Adds an uploaded LoRA as `<name>.safetensors` once it passes the full check against the
   * model, moving it into place atomically. An existing name is only replaced when asked.
   */
  async add(name: string, bytes: Uint8Array, options: AddOptions = {}): Promise<AddResult> {
    const refuse = (message: string): AddResult => ({ ok: false, message });
    const given = name.trim().replace(/\.safetensors$/i, '');
    const pickled = pickledFileProblem(given);
    if (pickled) return refuse(`'${name}' ${pickled}`);
    const slug = slugify(given);
    if (slug === '') {
      return refuse(`'${name}' has no letters or digits to name a LoRA by; pick a name like 'tabby-cat'`);
    }
    if (bytes.byteLength === 0) return refuse("the file is empty; upload the LoRA's .safetensors file");
    if (bytes.byteLength > this.options.maxAddBytes) {
      let [size, limit] = [formatBytes(bytes.byteLength), formatBytes(this.options.maxAddBytes)];
      if (size === limit) [size, limit] = [`${bytes.byteLength} bytes`, `${this.options.maxAddBytes} bytes`];
      return refuse(`the file is ${size}; LoRAs up to ${limit} can be added`);
    }
    if (!this.base) {
      return refuse(
        'no SD 1.5 model is configured yet, so the LoRA cannot be checked; set up the model first',
      );
    }
    await this.rescan();
    const existing = this.byName.get(slug);
    if (existing && !options.replace) {
      return refuse(`a LoRA named '${slug}' already exists; pick another name, or replace it`);
    }
    if (existing && extname(existing.file).toLowerCase() !== LORA_EXTENSION) {
      return refuse(`'${slug}' is the pickled file ${existing.file}; remove it first, then add the new one`);
    }
    const target = existing ? existing.ref.path : join(this.dir, `${slug}${LORA_EXTENSION}`);
    const clash = refuse(
      `a file named ${slug}${LORA_EXTENSION} is already in the library; pick another name`,
    );
    // A dot file with another extension: the scanner never lists it, even half written.
    const temp = join(this.dir, `.${slug}.${randomBytes(6).toString('hex')}.part`);
    try {
      await writeFile(temp, bytes, { flag: 'wx' });
      const outcome = await this.runCheck(temp);
      if (outcome.check.state !== 'ok') return refuse(`'${slug}' was not added: ${outcome.check.reason}`);
      if (existing) await rename(temp, target);
      else if (!(await placeWithoutOverwrite(temp, target))) return clash;
      await this.writeExtras(basename(target, extname(target)), options);
      const st = await stat(target);
      this.record(`${target}|${st.size}|${st.mtimeMs}`, outcome);
      await this.rescan();
      const entry = this.entries.find((e) => e.ref.path === target);
      if (!entry) return refuse(`'${slug}' was written but disappeared from the folder at once; try again`);
      return { ok: true, entry, replaced: existing !== undefined };
    } catch (err) {
      return refuse(
        `the LoRA folder cannot be written (${fsCode(err)}); ask the operator to check its space and permissions`,
      );
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  /** Writes the sidecar and preview an import brought, each atomically; a replaced LoRA's old previews go. */
  private async writeExtras(stem: string, options: AddOptions): Promise<void> {
    const { sidecar, preview } = options;
    if (sidecar === undefined && preview === undefined) return;
    const put = async (file: string, data: string | Uint8Array) => {
      const temp = join(this.dir, `.${file}.${randomBytes(6).toString('hex')}.part`);
      await writeFile(temp, data, { flag: 'wx' });
      await rename(temp, join(this.dir, file));
    };
    if (preview)
      for (const old of previewNames(stem)) await unlink(join(this.dir, old)).catch(() => undefined);
    if (sidecar) await put(`${stem}.json`, `${JSON.stringify(sidecar, null, 2)}\n`);
    if (preview) await put(`${stem}.preview.${preview.extension}`, preview.data);
  }

  /** Deletes a LoRA's file with its sidecars and preview (left behind, they would dress up the next file of that name). */
  async remove(name: string): Promise<RemoveResult> {
    await this.rescan();
    const entry = this.get(name);
    if (!entry) return { ok: false, message: unknownLoraMessage(name, this.closest(name)) };
    const scan = this.scans.get(entry.file);
    try {
      await unlink(entry.ref.path);
    } catch (err) {
      if (fsCode(err) !== 'ENOENT') {
        return {
          ok: false,
          message: `'${entry.name}' could not be deleted (${fsCode(err)}); ask the operator to check the folder's permissions`,
        };
      }
    }
    const previews = scan ? previewNames(scan.stem).map((n) => join(this.dir, n)) : [];
    for (const path of [...(scan?.sidecarPaths ?? []), ...previews])
      await unlink(path).catch(() => undefined);
    await this.rescan();
    return { ok: true, entry };
  }

  /** Scans the folder now; concurrent calls share one scan (plus one more if asked during it). */
  rescan(): Promise<LibraryChange> {
    if (this.queued) return this.queued;
    if (!this.running) {
      this.running = this.scanOnce().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.rescan();
      });
    return this.queued;
  }

  /** Stops watching and checking; the entries stay readable. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounce);
    clearInterval(this.interval);
  }

  private startWatching(): void {
    if (this.options.watch) {
      try {
        this.watcher = watch(this.dir, { persistent: false }, (_event, filename) => {
          if (typeof filename === 'string' && filename.startsWith('.')) return;
          this.scheduleRescan();
        });
        this.watcher.on('error', (err) => {
          this.warn(
            `stopped watching the LoRA folder (${err.message}); changes show up at the next periodic rescan`,
          );
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch (err) {
        this.warn(
          `cannot watch the LoRA folder (${(err as Error).message}); changes show up at the next periodic rescan`,
        );
      }
    }
    if (this.options.rescanIntervalMs > 0) {
      this.interval = setInterval(() => this.scheduleRescan(0), this.options.rescanIntervalMs);
      this.interval.unref();
    }
  }

  private scheduleRescan(delay = this.options.debounceMs): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.rescan().catch((err) => this.warn(`rescanning the LoRA folder failed: ${(err as Error).message}`));
    }, delay);
    this.debounce.unref();
  }

  private async scanOnce(): Promise<LibraryChange> {
    let dirents: Dirent[];
    try {
      dirents = (await readdir(this.dir, { withFileTypes: true })).filter((d) => !d.name.startsWith('.'));
    } catch (err) {
      // A passing error (a network share, say) must not empty the library.
      this.warn(`cannot read the LoRA folder (${fsCode(err)}); keeping the LoRAs listed before`);
      return { added: [], removed: [], changed: [] };
    }
    const listing = dirents.filter((d) => d.isFile() || d.isSymbolicLink()).map((d) => d.name);
    const byLowerName = new Map(listing.map((n) => [n.toLowerCase(), n]));
    const next = new Map<string, ScannedFile>();
    const skipped = new Map<string, string>();
    for (const dirent of dirents) {
      const file = dirent.name;
      const ext = extname(file).toLowerCase();
      const isLora = ext === LORA_EXTENSION || PICKLE_EXTENSIONS.has(ext);
      if (!isLora && !dirent.isDirectory()) continue;
      const path = join(this.dir, file);
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) {
        const why = notAFile(dirent, st);
        if (isLora || st?.isDirectory()) skipped.set(file, why);
        continue;
      }
      if (!isLora) continue;
      const stem = file.slice(0, -ext.length);
      const sidecarFiles = SIDECAR_SUFFIXES.map((s) => byLowerName.get(`${stem}${s}`.toLowerCase())).filter(
        (n) => n !== undefined,
      );
      const previewFile = previewNames(stem)
        .map((n) => byLowerName.get(n.toLowerCase()))
        .find((n) => n !== undefined);
      const sidecarStamps = await Promise.all(
        sidecarFiles.map(async (n) => {
          const s = await stat(join(this.dir, n)).catch(() => undefined);
          return `${n}:${s?.size}:${s?.mtimeMs}`;
        }),
      );
      const stamp = `${path}|${st.size}|${st.mtimeMs}`;
      const fingerprint = `${stamp}|${sidecarStamps.join(',')}|${previewFile ?? ''}`;
      const before = this.scans.get(file);
      next.set(
        file,
        before?.fingerprint === fingerprint
          ? before
          : await this.scanFile({
              path,
              file,
              stem,
              sizeBytes: st.size,
              modifiedMs: st.mtimeMs,
              stamp,
              fingerprint,
              sidecarPaths: sidecarFiles.map((n) => join(this.dir, n)),
              sidecarProblems: [],
              ...(previewFile ? { previewPath: join(this.dir, previewFile) } : {}),
            }),
      );
    }
    if (this.closed) return { added: [], removed: [], changed: [] };
    this.scans = next;
    this.skipped = skipped;
    const claims: NameClaim[] = [...next.values()].map((s) => ({
      file: s.file,
      wanted: slugify(displayNameOf(s)) || 'lora',
      rank: extname(s.file).toLowerCase() === LORA_EXTENSION ? 0 : 1,
    }));
    this.held = assignNames(claims, this.held);
    const stamps = new Set([...next.values()].map((s) => s.stamp));
    for (const cache of [this.checks, this.hashes])
      for (const k of cache.keys()) if (!stamps.has(k)) cache.delete(k);
    this.queueChecks();
    const change = this.rebuild();
    this.emitChange(change);
    void this.pump();
    return change;
  }

  /** Reads a file's header and sidecars (the cheap part; the tensors wait for the check). */
  private async scanFile(scan: ScannedFile): Promise<ScannedFile> {
    const pickled = pickledFileProblem(scan.path);
    if (pickled) scan.problem = pickled;
    else {
      const read = this.options.headerReader ?? ((path: string) => Promise.resolve(readHeaderOutcome(path)));
      const outcome = await read(scan.path);
      if ('header' in outcome) scan.header = outcome.header;
      else scan.problem = outcome.problem;
    }
    // Read in reverse so the .json (first) overrides the .civitai.info fields.
    const merged: Sidecar = {};
    for (const path of [...scan.sidecarPaths].reverse()) {
      const name = path.slice(this.dir.length + 1);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        scan.sidecarProblems.push(`${name} could not be read (${fsCode(err)})`);
        continue;
      }
      const parsed = parseSidecar(text);
      if ('problem' in parsed) scan.sidecarProblems.push(`${name} ${parsed.problem}`);
      else Object.assign(merged, parsed.sidecar);
    }
    if (Object.keys(merged).length > 0) scan.sidecar = merged;
    return scan;
  }

  private checkOf(scan: ScannedFile): LoraCheck {
    if (scan.problem) return { state: 'unusable', reason: scan.problem };
    if (scan.header?.refusal) return { state: 'unusable', reason: scan.header.refusal };
    if (!this.base) return { state: 'unchecked' };
    return this.checks.get(scan.stamp) ?? { state: 'pending' };
  }

  private needsWork(scan: ScannedFile): boolean {
    if (scan.problem || scan.header?.refusal) return false;
    return this.base ? !this.checks.has(scan.stamp) : !this.hashes.has(scan.stamp);
  }

  private queueChecks(): void {
    this.queue.clear();
    for (const scan of this.scans.values()) if (this.needsWork(scan)) this.queue.add(scan.file);
  }

  private record(stamp: string, outcome: CheckOutcome): void {
    this.checks.set(stamp, outcome.check);
    if (outcome.sha256) this.hashes.set(stamp, outcome.sha256);
  }

  /** Works through the check queue one file per turn of the event loop. */
  private pump(): Promise<void> {
    this.pumping ??= this.drain().finally(() => {
      this.pumping = undefined;
    });
    return this.pumping;
  }

  private async drain(): Promise<void> {
    let dirty = false;
    let lastEvent = Date.now();
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const [file] = this.queue;
      if (file === undefined || this.closed) break;
      this.queue.delete(file);
      const scan = this.scans.get(file);
      if (!scan || !this.needsWork(scan)) continue;
      if (this.base) this.record(scan.stamp, await this.runCheck(scan.path));
      else {
        try {
          this.hashes.set(scan.stamp, await hashFile(scan.path));
        } catch {
          continue; // gone or unreadable: the next scan says so
        }
      }
      dirty = true;
      if (Date.now() - lastEvent >= CHANGE_EVENT_EVERY_MS) {
        this.emitChange(this.rebuild());
        lastEvent = Date.now();
        dirty = false;
      }
    }
    if (dirty && !this.closed) this.emitChange(this.rebuild());
  }

  /** Rebuilds the entries from the scans and caches; returns what changed since the last build. */
  private rebuild(): LibraryChange {
    const entries: LoraEntry[] = [];
    for (const scan of this.scans.values()) {
      const name = this.held.get(scan.file)!;
      entries.push(buildEntry(scan, name, this.checkOf(scan), this.hashes.get(scan.stamp)));
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const versions = new Map(
      entries.map((e) => [
        e.name,
        `${e.file}|${this.scans.get(e.file)!.fingerprint}|${e.check.state}|${e.sha256 ?? ''}`,
      ]),
    );
    const change: LibraryChange = { added: [], removed: [], changed: [] };
    for (const [name, version] of versions) {
      const before = this.versions.get(name);
      if (before === undefined) change.added.push(name);
      else if (before !== version) change.changed.push(name);
    }
    for (const name of this.versions.keys()) if (!versions.has(name)) change.removed.push(name);
    this.entries = entries;
    this.byName = new Map(entries.map((e) => [e.name, e]));
    this.usableNames = entries.filter((e) => e.usable).map((e) => e.name);
    this.versions = versions;
    this.reportRefusals();
    return change;
  }

  /** Tells the operator once about each file that is not offered, and why. */
  private reportRefusals(): void {
    const refused = new Map(this.skipped);
    for (const e of this.entries) if (e.check.state === 'unusable') refused.set(e.file, e.check.reason);
    for (const [file, why] of refused) {
      if (this.reported.get(file) !== why) this.warn(`LoRA folder: ${file} is not offered: ${why}`);
    }
    this.reported = refused;
  }

  private emitChange(change: LibraryChange): void {
    if (change.added.length + change.removed.length + change.changed.length > 0) this.emit('change', change);
  }

  private warn(message: string): void {
    this.emit('warning', message);
  }
}

/** Why a directory entry with a LoRA's name (or a folder) is not read as a LoRA file. */
function notAFile(dirent: Dirent, st: Stats | undefined): string {
  if (!st)
    return dirent.isSymbolicLink()
      ? 'is a link to nothing (its target is gone)'
      : 'disappeared while scanning';
  const link = dirent.isSymbolicLink() ? 'is a link to ' : 'is ';
  if (st.isDirectory())
    return `${link}a folder; sub-folders are not read, so move its LoRA files into the LoRA folder itself`;
  const kind = st.isFIFO() ? 'a named pipe (FIFO)' : st.isSocket() ? 'a socket' : 'a device';
  return `${link}${kind}, not a file; put the LoRA file itself there`;
}

/** Moves `from` to `to` unless `to` exists (a hard link cannot overwrite); false on a clash. */
async function placeWithoutOverwrite(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    const code = fsCode(err);
    if (code === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK'].includes(code)) throw err;
  }
  // Filesystems without hard links: an exclusive copy still never overwrites.
  try {
    await copyFile(from, to, constants.COPYFILE_EXCL);
    return true;
  } catch (err) {
    if (fsCode(err) === 'EEXIST') return false;
    throw err;
  }
}

function fsCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
