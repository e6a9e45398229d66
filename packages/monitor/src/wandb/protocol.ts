import axios, { type AxiosInstance } from 'axios';
import type { Spool } from './spool.js';

/**
 * GraphQL documents of the W&B API (the same operations and argument names the official client sends).
 * `UpsertBucket` creates or updates a run; `CreateRunFiles` hands out upload URLs for media files.
 */
export const UPSERT_BUCKET = `mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String, $displayName: String, $config: JSONString, $host: String, $state: String, $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, name: $name, modelName: $project, entityName: $entity, displayName: $displayName, config: $config, host: $host, state: $state, summaryMetrics: $summaryMetrics}) {
    bucket { id name displayName project { id name entity { id name } } historyLineCount }
    inserted
  }
}`;

export const CREATE_RUN_FILES = `mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run, files: $files}) {
    runID
    uploadHeaders
    files { name uploadUrl }
  }
}`;

export const HISTORY_FILE = 'wandb-history.jsonl';
export const SUMMARY_FILE = 'wandb-summary.json';

export interface RetryOptions {
  /** First backoff delay; default 1000 ms. Delays double up to `maxMs` with ±25 % jitter. */
  initialMs?: number;
  /** Default 60 000 ms. */
  maxMs?: number;
}

/** Why a request failed, without anything from the request itself (headers carry the API key). */
export class WandbRequestError extends Error {
  override name = 'WandbRequestError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** 5xx, 429 (rate limit), 409 (conflict while the server settles a run) and transport failures are retried. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 409;
}

function toRequestError(error: unknown, what: string): WandbRequestError {
  if (error instanceof WandbRequestError) return error;
  if (axios.isAxiosError(error)) {
    const status = error.response?.status;
    if (status !== undefined) {
      return new WandbRequestError(`${what} failed: HTTP ${status}`, isRetryableStatus(status), status);
    }
    const code = error.code ?? 'network error';
    return new WandbRequestError(`${what} failed: ${code === 'ECONNABORTED' ? 'timeout' : code}`, true);
  }
  return new WandbRequestError(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, false);
}

export interface SenderOptions {
  baseUrl: string;
  apiKey: string;
  /** Per-request timeout; default 30 000 ms. */
  timeoutMs?: number;
  /** History lines per file_stream request; default 1000. */
  batchLines?: number;
}

/**
 * Moves a spool's contents to a W&B server, one request at a time, recording progress in the spool after each
 * acknowledged request. `pumpOnce()` makes at most one round of requests and throws WandbRequestError on failure;
 * scheduling and retrying are the caller's job.
 */
export class WandbSender {
  private readonly http: AxiosInstance;
  private readonly batchLines: number;
  private uploadHeaders: Record<string, string> = {};

  constructor(
    private readonly spool: Spool,
    options: SenderOptions,
  ) {
    this.batchLines = options.batchLines ?? 1000;
    this.http = axios.create({
      baseURL: options.baseUrl.replace(/\/+$/, ''),
      timeout: options.timeoutMs ?? 30_000,
      auth: { username: 'api', password: options.apiKey },
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'gantry-monitor' },
      // Redirects could forward the Authorization header elsewhere.
      maxRedirects: 0,
    });
  }

  private async graphql<T>(query: string, variables: Record<string, unknown>, what: string): Promise<T> {
    let body: { data?: T; errors?: { message?: string }[] };
    try {
      body = (await this.http.post('/graphql', { query, variables })).data;
    } catch (error) {
      throw toRequestError(error, what);
    }
    if (body?.errors?.length) {
      throw new WandbRequestError(`${what} failed: ${body.errors.map((e) => e.message ?? 'error').join('; ')}`, false);
    }
    if (!body?.data) throw new WandbRequestError(`${what} failed: the server sent no data`, true);
    return body.data;
  }

  private get runPath(): string {
    const { entity, project, runId } = this.spool.info;
    return `/files/${encodeURIComponent(entity ?? '')}/${encodeURIComponent(project)}/${encodeURIComponent(runId)}/file_stream`;
  }

  private async upsert(): Promise<void> {
    const info = this.spool.info;
    const config = info.config
      ? JSON.stringify(Object.fromEntries(Object.entries(info.config).map(([k, value]) => [k, { value, desc: null }])))
      : undefined;
    const data = await this.graphql<{
      upsertBucket: { bucket: { name: string; project: { name: string; entity: { name: string } } } };
    }>(
      UPSERT_BUCKET,
      {
        name: info.runId,
        project: info.project,
        entity: info.entity,
        displayName: info.displayName,
        config,
        host: info.host,
      },
      'UpsertBucket',
    );
    const bucket = data.upsertBucket?.bucket;
    if (!bucket) throw new WandbRequestError('UpsertBucket failed: no run in the answer', false);
    if (!info.entity && bucket.project?.entity?.name) {
      info.entity = bucket.project.entity.name;
      this.spool.saveInfo();
    }
    if (!info.entity) throw new WandbRequestError('UpsertBucket: no entity given and the server named none', false);
    this.spool.progress.upserted = true;
    this.spool.saveProgress();
  }

  private async uploadFiles(names: string[]): Promise<void> {
    const { entity, project, runId } = this.spool.info;
    const data = await this.graphql<{
      createRunFiles: { uploadHeaders?: string[]; files: { name: string; uploadUrl: string }[] };
    }>(CREATE_RUN_FILES, { entity, project, run: runId, files: names }, 'CreateRunFiles');
    const result = data.createRunFiles;
    for (const header of result?.uploadHeaders ?? []) {
      const i = header.indexOf(':');
      if (i > 0) this.uploadHeaders[header.slice(0, i).trim()] = header.slice(i + 1).trim();
    }
    for (const { name, uploadUrl } of result?.files ?? []) {
      if (!names.includes(name) || !uploadUrl) continue;
      try {
        // Storage URLs are pre-signed: no W&B credentials go with the file.
        await axios.put(uploadUrl, this.spool.readFile(name), {
          headers: { ...this.uploadHeaders, 'Content-Type': 'application/octet-stream' },
          timeout: this.http.defaults.timeout,
          maxRedirects: 0,
          maxBodyLength: Infinity,
        });
      } catch (error) {
        throw toRequestError(error, `upload of ${name}`);
      }
      this.spool.progress.putDone.push(name);
      this.spool.saveProgress();
    }
  }

  private async fileStream(body: Record<string, unknown>): Promise<void> {
    try {
      await this.http.post(this.runPath, body);
    } catch (error) {
      throw toRequestError(error, 'file_stream');
    }
  }

  /** One round: upsert the run, upload pending media, send a batch of history + summary, then `complete`. */
  async pumpOnce(): Promise<'sent' | 'idle'> {
    const spool = this.spool;
    if (!spool.progress.upserted) {
      await this.upsert();
      return 'sent';
    }
    const pending = spool.pendingFiles();
    if (pending.length > 0) {
      await this.uploadFiles(pending.slice(0, 20));
      return 'sent';
    }
    const lines = spool.unsentLines.slice(0, this.batchLines);
    const sendSummary = !spool.progress.summarySent;
    const uploaded = [...spool.progress.putDone];
    if (lines.length > 0 || sendSummary || uploaded.length > 0) {
      const files: Record<string, { offset: number; content: string[] }> = {};
      if (lines.length > 0) files[HISTORY_FILE] = { offset: spool.progress.historySent, content: lines };
      const summaryVersion = sendSummary ? spool.summaryVersion : undefined;
      if (sendSummary) files[SUMMARY_FILE] = { offset: 0, content: [JSON.stringify(spool.summary)] };
      const body: Record<string, unknown> = {};
      if (Object.keys(files).length > 0) body.files = files;
      if (uploaded.length > 0) body.uploaded = uploaded;
      await this.fileStream(body);
      spool.acknowledge(lines.length, summaryVersion, uploaded);
      return 'sent';
    }
    if (spool.progress.exitcode !== undefined && !spool.progress.completeSent) {
      await this.fileStream({ complete: true, exitcode: spool.progress.exitcode });
      spool.progress.completeSent = true;
      spool.saveProgress();
      return 'sent';
    }
    return 'idle';
  }
}

export function backoffDelay(attempt: number, options: RetryOptions = {}, random = Math.random): number {
  const initial = options.initialMs ?? 1000;
  const max = options.maxMs ?? 60_000;
  const base = Math.min(max, initial * 2 ** attempt);
  return Math.round(base * (0.75 + 0.5 * random()));
}
