import * as fs from 'node:fs';
import * as path from 'node:path';

/** What identifies a W&B run; never holds the API key. */
export interface SpoolRunInfo {
  runId: string;
  project: string;
  /** Resolved from the server's answer when the user gave none. */
  entity?: string;
  displayName?: string;
  baseUrl: string;
  config?: Record<string, unknown>;
  host?: string;
}

/** How far the server has acknowledged the spool. */
export interface SpoolProgress {
  upserted: boolean;
  /** History lines acknowledged by file_stream; the next request starts at this offset. */
  historySent: number;
  /** Whether the current summary.json has been sent. */
  summarySent: boolean;
  /** Media files PUT to storage and reported through file_stream `uploaded`. */
  uploaded: string[];
  /** Media files PUT to storage but not yet reported. */
  putDone: string[];
  /** Exit code once the run ended. */
  exitcode?: number;
  completeSent: boolean;
}

export const SPOOL_DIR = 'wandb-spool';

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 1));
  fs.renameSync(tmp, file);
}

/**
 * The on-disk record of a W&B run inside the run folder (`<run>/wandb-spool/`): `run.json`, `history.jsonl` (every
 * row, in order), `summary.json`, `media/…` (files to upload) and `progress.json` (what the server acknowledged).
 * Everything is written before it is sent, so an unreachable server loses nothing and `gantry wandb sync` can
 * finish the job later.
 */
export class Spool {
  readonly dir: string;
  /** History lines not yet acknowledged, in order, starting at offset `progress.historySent`. */
  private unsent: string[] = [];
  private lineCount = 0;
  private summaryObj: Record<string, unknown> = {};
  private lastRow?: Record<string, unknown>;
  /** Bumped by every summary change, so a summary changed while a request was in flight is sent again. */
  summaryVersion = 0;
  progress: SpoolProgress;

  private constructor(
    dir: string,
    public info: SpoolRunInfo,
  ) {
    this.dir = dir;
    this.progress = { upserted: false, historySent: 0, summarySent: true, uploaded: [], putDone: [], completeSent: false };
  }

  static exists(runDir: string): boolean {
    return fs.existsSync(path.join(runDir, SPOOL_DIR, 'run.json'));
  }

  /** Opens the spool of `runDir`, creating it with `info` when there is none (a resumed run keeps its W&B run). */
  static open(runDir: string, info: SpoolRunInfo): Spool {
    if (Spool.exists(runDir)) return Spool.load(runDir);
    const dir = path.join(runDir, SPOOL_DIR);
    fs.mkdirSync(path.join(dir, 'media'), { recursive: true });
    const spool = new Spool(dir, info);
    writeJsonAtomic(path.join(dir, 'run.json'), info);
    spool.saveProgress();
    return spool;
  }

  static load(runDir: string): Spool {
    const dir = path.join(runDir, SPOOL_DIR);
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as SpoolRunInfo;
    const spool = new Spool(dir, info);
    const progressFile = path.join(dir, 'progress.json');
    if (fs.existsSync(progressFile)) Object.assign(spool.progress, JSON.parse(fs.readFileSync(progressFile, 'utf8')));
    const historyFile = path.join(dir, 'history.jsonl');
    if (fs.existsSync(historyFile)) {
      // A crash can leave a partial last line; only whole JSON lines count.
      const lines = fs
        .readFileSync(historyFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim().length > 0);
      const whole: string[] = [];
      for (const l of lines) {
        try {
          JSON.parse(l);
          whole.push(l);
        } catch {
          break;
        }
      }
      if (whole.length !== lines.length) fs.writeFileSync(historyFile, whole.map((l) => l + '\n').join(''));
      spool.lineCount = whole.length;
      spool.unsent = whole.slice(spool.progress.historySent);
      if (whole.length > 0) spool.lastRow = JSON.parse(whole[whole.length - 1]);
    }
    const summaryFile = path.join(dir, 'summary.json');
    if (fs.existsSync(summaryFile)) spool.summaryObj = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
    return spool;
  }

  saveInfo(): void {
    writeJsonAtomic(path.join(this.dir, 'run.json'), this.info);
  }

  saveProgress(): void {
    writeJsonAtomic(path.join(this.dir, 'progress.json'), this.progress);
  }

  get lastHistoryRow(): Record<string, unknown> | undefined {
    return this.lastRow;
  }

  get historyLines(): number {
    return this.lineCount;
  }

  get unsentLines(): readonly string[] {
    return this.unsent;
  }

  get summary(): Readonly<Record<string, unknown>> {
    return this.summaryObj;
  }

  appendHistory(row: Record<string, unknown>): void {
    const line = JSON.stringify(row);
    fs.appendFileSync(path.join(this.dir, 'history.jsonl'), line + '\n');
    this.unsent.push(line);
    this.lineCount += 1;
    this.lastRow = row;
  }

  updateSummary(values: Record<string, unknown>): void {
    Object.assign(this.summaryObj, values);
    writeJsonAtomic(path.join(this.dir, 'summary.json'), this.summaryObj);
    this.summaryVersion += 1;
    this.progress.summarySent = false;
  }

  /** Stores a media file under `media/…` (name relative to the W&B run's files, e.g. `media/images/x.png`). */
  addFile(name: string, bytes: Uint8Array): void {
    const file = path.join(this.dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, bytes);
  }

  readFile(name: string): Buffer {
    return fs.readFileSync(path.join(this.dir, name));
  }

  /** Media files not yet PUT to storage. */
  pendingFiles(): string[] {
    const done = new Set([...this.progress.uploaded, ...this.progress.putDone]);
    const out: string[] = [];
    const walk = (rel: string) => {
      const abs = path.join(this.dir, rel);
      if (!fs.existsSync(abs)) return;
      for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
        const name = `${rel}/${entry.name}`;
        if (entry.isDirectory()) walk(name);
        else if (!done.has(name) && !entry.name.endsWith('.tmp')) out.push(name);
      }
    };
    walk('media');
    return out.sort();
  }

  /**
   * Marks the first `n` unsent history lines as acknowledged, and the summary when the version sent is still the
   * current one.
   */
  acknowledge(n: number, summaryVersion: number | undefined, uploaded: readonly string[]): void {
    this.unsent.splice(0, n);
    this.progress.historySent += n;
    if (summaryVersion === this.summaryVersion) this.progress.summarySent = true;
    if (uploaded.length > 0) {
      this.progress.uploaded.push(...uploaded);
      this.progress.putDone = this.progress.putDone.filter((f) => !uploaded.includes(f));
    }
    this.saveProgress();
  }

  markExit(exitcode: number): void {
    this.progress.exitcode = exitcode;
    this.progress.completeSent = false;
    this.saveProgress();
  }

  /** Everything recorded so far has been acknowledged (including `complete` when the run ended). */
  get drained(): boolean {
    const p = this.progress;
    return (
      p.upserted &&
      this.unsent.length === 0 &&
      p.summarySent &&
      p.putDone.length === 0 &&
      this.pendingFiles().length === 0 &&
      (p.exitcode === undefined || p.completeSent)
    );
  }
}
