import { createHash, randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { backoffDelay, WandbRequestError, WandbSender, type RetryOptions } from './protocol.js';
import { Spool } from './spool.js';

export const DEFAULT_BASE_URL = 'https://api.wandb.ai';
export const DEFAULT_PROJECT = 'gantry';

export interface WandbSettings {
  apiKey?: string;
  baseUrl: string;
  entity?: string;
  project: string;
}

/** Options first, then WANDB_API_KEY, WANDB_BASE_URL, WANDB_ENTITY, WANDB_PROJECT. */
export function resolveWandbSettings(
  options: { apiKey?: string; baseUrl?: string; entity?: string; project?: string },
  env: Record<string, string | undefined> = process.env,
): WandbSettings {
  const pick = (a?: string, b?: string) => (a && a.length > 0 ? a : b && b.length > 0 ? b : undefined);
  return {
    apiKey: pick(options.apiKey, env.WANDB_API_KEY),
    baseUrl: pick(options.baseUrl, env.WANDB_BASE_URL) ?? DEFAULT_BASE_URL,
    entity: pick(options.entity, env.WANDB_ENTITY),
    project: pick(options.project, env.WANDB_PROJECT) ?? DEFAULT_PROJECT,
  };
}

/** A W&B-style run id: 8 characters of [a-z0-9]. */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(8), (b) => alphabet[b % alphabet.length]).join('');
}

export interface DrainOptions {
  retry?: RetryOptions;
  /** Give up (leaving the rest spooled) at this time (ms since epoch). */
  deadline?: number;
  /** Give up after this many consecutive failed attempts. */
  maxAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface DrainResult {
  drained: boolean;
  error?: WandbRequestError;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends until the spool is drained, retrying retryable failures with exponential backoff. */
export async function drainSpool(sender: WandbSender, spool: Spool, options: DrainOptions = {}): Promise<DrainResult> {
  const sleep = options.sleep ?? defaultSleep;
  let attempt = 0;
  let lastError: WandbRequestError | undefined;
  while (!spool.drained) {
    try {
      const result = await sender.pumpOnce();
      attempt = 0;
      lastError = undefined;
      if (result === 'idle') break;
    } catch (error) {
      lastError = error instanceof WandbRequestError ? error : new WandbRequestError(String(error), false);
      if (!lastError.retryable) return { drained: false, error: lastError };
      attempt += 1;
      if (options.maxAttempts !== undefined && attempt >= options.maxAttempts) break;
      const delay = backoffDelay(attempt - 1, options.retry);
      if (options.deadline !== undefined && Date.now() + delay > options.deadline) break;
      await sleep(delay);
    }
    if (options.deadline !== undefined && Date.now() > options.deadline) break;
  }
  return { drained: spool.drained, error: spool.drained ? undefined : lastError };
}

export interface WandbRunOptions {
  /** Run folder; the spool lives in `<dir>/wandb-spool/`. */
  dir: string;
  project?: string;
  entity?: string;
  /** Display name of the run. */
  runName?: string;
  /** W&B run id; default: the spooled one when resuming, else a fresh random id. */
  runId?: string;
  baseUrl?: string;
  apiKey?: string;
  /** Run config shown in W&B (hyperparameters). */
  config?: Record<string, unknown>;
  /** How long rows gather before a send; default 2000 ms. */
  flushIntervalMs?: number;
  /** History lines per request; default 1000. */
  batchLines?: number;
  /** Per-request timeout; default 30 000 ms. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** How long `finish()` may wait for the queue at the end of a run; default 30 000 ms. */
  finishTimeoutMs?: number;
  /** Receives warnings (never contains the API key). Default: console.warn. */
  onWarning?: (message: string) => void;
  /** Environment to read WANDB_* settings from; default process.env. */
  env?: Record<string, string | undefined>;
}

interface PendingRow {
  step: number;
  values: Record<string, unknown>;
}

/**
 * A live W&B run: rows go to the spool synchronously (so they are safe on disk) and a background loop sends them.
 * Nothing here blocks the caller on the network or throws because of it: failures become warnings, retryable ones
 * are retried with backoff, and whatever could not be sent stays in the spool for `gantry wandb sync`.
 */
export class WandbRun {
  readonly spool: Spool;
  readonly runDir: string;
  private readonly sender?: WandbSender;
  private readonly flushIntervalMs: number;
  private readonly batchLines: number;
  private readonly retry?: RetryOptions;
  private readonly finishTimeoutMs: number;
  private readonly warn: (message: string) => void;
  private readonly started = Date.now();
  private readonly runtimeBase: number;
  private pending?: PendingRow;
  private lastStep?: number;
  private timer?: ReturnType<typeof setTimeout>;
  private pumping?: Promise<void>;
  private attempt = 0;
  private disabled = false;
  private finished = false;
  private warnedStep = false;

  constructor(options: WandbRunOptions) {
    const settings = resolveWandbSettings(options, options.env);
    this.runDir = options.dir;
    this.warn = options.onWarning ?? ((m) => console.warn(m));
    this.flushIntervalMs = options.flushIntervalMs ?? 2000;
    this.batchLines = options.batchLines ?? 1000;
    this.retry = options.retry;
    this.finishTimeoutMs = options.finishTimeoutMs ?? 30_000;
    const resuming = Spool.exists(options.dir);
    this.spool = Spool.open(options.dir, {
      runId: options.runId ?? newRunId(),
      project: settings.project,
      entity: settings.entity,
      displayName: options.runName,
      baseUrl: settings.baseUrl,
      config: options.config,
      host: os.hostname(),
    });
    if (resuming) {
      // A resumed training run continues its W&B run: upsert again (it is running again) and continue the offsets.
      this.spool.progress.upserted = false;
      this.spool.progress.exitcode = undefined;
      this.spool.progress.completeSent = false;
      this.spool.saveProgress();
      const last = this.spool.lastHistoryRow;
      if (typeof last?._step === 'number') this.lastStep = last._step;
    }
    const lastRuntime = this.spool.lastHistoryRow?._runtime;
    this.runtimeBase = typeof lastRuntime === 'number' ? lastRuntime : 0;
    if (settings.apiKey) {
      this.sender = new WandbSender(this.spool, {
        baseUrl: settings.baseUrl,
        apiKey: settings.apiKey,
        timeoutMs: options.timeoutMs,
        batchLines: this.batchLines,
      });
      this.schedule(0);
    } else {
      this.warn(
        `W&B: no API key (set WANDB_API_KEY); logging to ${this.spool.dir} only. Send it later with: gantry wandb sync ${options.dir}`,
      );
    }
  }

  get runId(): string {
    return this.spool.info.runId;
  }

  /** Merges values into the row of `step`; a row is written once a later step arrives (or at finish). */
  log(step: number, values: Record<string, unknown>): void {
    if (this.finished) return;
    if (this.lastStep !== undefined && step <= this.lastStep) {
      if (!this.warnedStep) {
        this.warnedStep = true;
        this.warn(`W&B: step ${step} is not after the last logged step ${this.lastStep}; such rows are skipped (W&B steps only increase)`);
      }
      return;
    }
    if (this.pending && step > this.pending.step) this.commit();
    if (this.pending && step < this.pending.step) return;
    this.pending ??= { step, values: {} };
    Object.assign(this.pending.values, values);
  }

  /** Stores a PNG as a W&B image file and references it from the row of `step` under `key`. */
  logImage(step: number, key: string, png: Uint8Array, size: { width: number; height: number }): void {
    if (this.finished) return;
    const sha256 = createHash('sha256').update(png).digest('hex');
    const safeKey = key.replace(/[^A-Za-z0-9_.-]/g, '_');
    const name = `media/images/${safeKey}_${step}_${sha256.slice(0, 20)}.png`;
    this.spool.addFile(name, png);
    this.log(step, {
      [key]: { _type: 'image-file', path: name, sha256, size: png.length, format: 'png', width: size.width, height: size.height },
    });
  }

  /** Writes the pending row to the spool and lets the sender know. */
  commit(): void {
    const row = this.pending;
    if (!row) return;
    this.pending = undefined;
    const now = Date.now();
    this.spool.appendHistory({
      ...row.values,
      _step: row.step,
      _runtime: this.runtimeBase + (now - this.started) / 1000,
      _timestamp: now / 1000,
    });
    this.spool.updateSummary(row.values);
    this.lastStep = row.step;
    if (this.spool.unsentLines.length >= this.batchLines) this.schedule(0, true);
    else this.schedule(this.flushIntervalMs);
  }

  private schedule(delay: number, replace = false): void {
    if (!this.sender || this.disabled || this.finished) return;
    if (this.timer) {
      if (!replace || this.attempt > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pump();
    }, delay);
    // The timer must never keep the process alive on its own.
    this.timer.unref?.();
  }

  private pump(): Promise<void> {
    if (this.pumping) return this.pumping;
    const sender = this.sender!;
    this.pumping = (async () => {
      try {
        while (!this.disabled && (await sender.pumpOnce()) === 'sent') this.attempt = 0;
        this.attempt = 0;
      } catch (error) {
        this.onFailure(error);
      } finally {
        this.pumping = undefined;
      }
    })();
    return this.pumping;
  }

  private onFailure(error: unknown): void {
    const err = error instanceof WandbRequestError ? error : new WandbRequestError(String(error), false);
    if (!err.retryable) {
      this.disabled = true;
      this.warn(`W&B: ${err.message}; not retrying. Data stays in ${this.spool.dir}; send it with: gantry wandb sync ${this.runDir}`);
      return;
    }
    this.attempt += 1;
    if (this.attempt === 1) this.warn(`W&B: ${err.message}; retrying in the background (nothing is lost, it is spooled)`);
    this.schedule(backoffDelay(this.attempt - 1, this.retry));
  }

  /** Waits for the background loop to go idle (tests, explicit flushes). Never throws. */
  async flush(): Promise<void> {
    if (this.timer && this.attempt === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.sender && !this.disabled && this.attempt === 0) await this.pump();
    else await this.pumping;
  }

  /**
   * Ends the run: writes the last row, records the exit code and sends what is left, waiting at most
   * `finishTimeoutMs`. Whatever remains stays spooled (a warning says how to send it).
   */
  async finish(exitcode: number): Promise<DrainResult> {
    if (this.finished) return { drained: this.spool.drained };
    this.commit();
    this.finished = true;
    this.spool.markExit(exitcode);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.pumping;
    if (!this.sender) return { drained: false };
    if (this.disabled) return { drained: false };
    const result = await drainSpool(this.sender, this.spool, {
      retry: this.retry,
      deadline: Date.now() + this.finishTimeoutMs,
    });
    if (!result.drained) {
      const rows = this.spool.unsentLines.length;
      this.warn(
        `W&B: ${result.error ? result.error.message + '; ' : ''}${rows} history rows and ${this.spool.pendingFiles().length} files not sent; ` +
          `send them with: gantry wandb sync ${this.runDir}`,
      );
    }
    return result;
  }
}

export interface SyncOptions {
  apiKey?: string;
  baseUrl?: string;
  timeoutMs?: number;
  batchLines?: number;
  retry?: RetryOptions;
  /** Consecutive failed attempts before giving up; default 6. */
  maxAttempts?: number;
  env?: Record<string, string | undefined>;
  sleep?: (ms: number) => Promise<void>;
}

export interface SyncResult {
  runId: string;
  entity?: string;
  project: string;
  /** History rows sent by this sync. */
  rows: number;
  /** Media files uploaded by this sync. */
  files: number;
  drained: boolean;
  error?: string;
}

/** Sends everything a run folder's spool still holds (`gantry wandb sync <run-dir>`). */
export async function syncRun(runDir: string, options: SyncOptions = {}): Promise<SyncResult> {
  if (!Spool.exists(runDir)) throw new Error(`No W&B spool in ${runDir} (expected ${runDir}/wandb-spool/run.json)`);
  const spool = Spool.load(runDir);
  const settings = resolveWandbSettings({ apiKey: options.apiKey, baseUrl: options.baseUrl }, options.env);
  if (!settings.apiKey) throw new Error('No W&B API key: set WANDB_API_KEY');
  // An explicit base URL (option or WANDB_BASE_URL) wins over the one the run was started with.
  const explicitBase = options.baseUrl ?? (options.env ?? process.env).WANDB_BASE_URL;
  const baseUrl = explicitBase || spool.info.baseUrl;
  const rowsBefore = spool.progress.historySent;
  const filesBefore = spool.progress.uploaded.length;
  // The server may have lost nothing, but upserting again is harmless and names the entity when it is unknown.
  spool.progress.upserted = false;
  const sender = new WandbSender(spool, {
    baseUrl,
    apiKey: settings.apiKey,
    timeoutMs: options.timeoutMs,
    batchLines: options.batchLines,
  });
  const result = await drainSpool(sender, spool, {
    retry: options.retry,
    maxAttempts: options.maxAttempts ?? 6,
    sleep: options.sleep,
  });
  return {
    runId: spool.info.runId,
    entity: spool.info.entity,
    project: spool.info.project,
    rows: spool.progress.historySent - rowsBefore,
    files: spool.progress.uploaded.length - filesBefore,
    drained: result.drained,
    error: result.error?.message,
  };
}
