import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool } from '../src/wandb/spool.js';
import { backoffDelay, isRetryableStatus } from '../src/wandb/protocol.js';
import { resolveWandbSettings, syncRun, WandbRun, type WandbRunOptions } from '../src/wandb/run.js';
import { FakeWandb } from './fake-wandb.js';

const KEY = 'test-key-0123456789abcdef0123456789abcdef';
const fast = { initialMs: 5, maxMs: 20 };
const servers: FakeWandb[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(): Promise<FakeWandb> {
  const s = await new FakeWandb().start();
  servers.push(s);
  return s;
}

function tmpRun(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-wandb-'));
}

function openRun(dir: string, baseUrl: string, extra: Partial<WandbRunOptions> = {}) {
  const warnings: string[] = [];
  const run = new WandbRun({
    dir,
    baseUrl,
    apiKey: KEY,
    project: 'gan-tests',
    entity: 'team',
    runName: 'mnist dcgan',
    env: {},
    flushIntervalMs: 10_000,
    retry: fast,
    finishTimeoutMs: 5000,
    onWarning: (m) => warnings.push(m),
    ...extra,
  });
  return { run, warnings };
}

/** Every byte under `dir`, to prove the API key was never written there. */
function allText(dir: string): string {
  let out = '';
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out += fs.readFileSync(path.join(entry.parentPath ?? (entry as any).path, entry.name), 'latin1');
  }
  return out;
}

describe('W&B settings', () => {
  it('reads WANDB_* variables with options taking precedence', () => {
    const env = { WANDB_API_KEY: 'k', WANDB_BASE_URL: 'http://x', WANDB_ENTITY: 'e', WANDB_PROJECT: 'p' };
    expect(resolveWandbSettings({}, env)).toEqual({ apiKey: 'k', baseUrl: 'http://x', entity: 'e', project: 'p' });
    expect(resolveWandbSettings({ project: 'q', apiKey: 'k2' }, env)).toMatchObject({ project: 'q', apiKey: 'k2' });
    expect(resolveWandbSettings({}, {})).toEqual({ apiKey: undefined, baseUrl: 'https://api.wandb.ai', entity: undefined, project: 'gantry' });
  });

  it('retries 5xx, 429 and 409 only, with doubling capped backoff', () => {
    expect([500, 502, 503, 429, 409].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 422].some(isRetryableStatus)).toBe(false);
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, { initialMs: 100, maxMs: 1000 }, mid))).toEqual([100, 200, 400, 800, 1000]);
  });
});

describe('WandbRun against a loopback server', () => {
  it('speaks the wire protocol: UpsertBucket, file_stream history/summary, media upload, complete', async () => {
    const s = await server();
    const dir = tmpRun();
    const { run, warnings } = openRun(dir, s.baseUrl, { batchLines: 10 });
    for (let step = 1; step <= 25; step++) run.log(step, { d_loss: 1 / step, g_loss: step });
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    run.log(26, { d_loss: 0.5 });
    run.logImage(26, 'samples', png, { width: 4, height: 3 });
    run.log(26, { 'eval/fid': 12.5 });
    await run.flush();
    const result = await run.finish(0);
    expect(result.drained).toBe(true);
    expect(warnings).toEqual([]);

    const auth = `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}`;
    const graphql = s.requests.filter((r) => r.url === '/graphql');
    expect(graphql.every((r) => r.headers.authorization === auth)).toBe(true);
    const upsert = graphql[0].json;
    expect(upsert.query).toContain('mutation UpsertBucket');
    expect(upsert.query).toContain('upsertBucket(input:');
    expect(upsert.variables).toMatchObject({ name: run.runId, project: 'gan-tests', entity: 'team', displayName: 'mnist dcgan' });
    expect(run.runId).toMatch(/^[a-z0-9]{8}$/);

    const streams = s.fileStreams();
    expect(streams.every((r) => r.url === `/files/team/gan-tests/${run.runId}/file_stream`)).toBe(true);
    expect(streams.every((r) => r.headers.authorization === auth)).toBe(true);
    const offsets = streams.map((r) => r.json.files?.['wandb-history.jsonl']?.offset).filter((o) => o !== undefined);
    // 10 lines per request; the row of step 26 is written at finish.
    expect(offsets).toEqual([0, 10, 20, 25]);
    const rows = s.acceptedHistory();
    expect(rows.map((r) => r._step)).toEqual(Array.from({ length: 26 }, (_, i) => i + 1));
    expect(rows[3]).toMatchObject({ d_loss: 0.25, g_loss: 4 });
    for (const r of rows) {
      expect(typeof r._runtime).toBe('number');
      expect(Math.abs((r._timestamp as number) - Date.now() / 1000)).toBeLessThan(60);
    }
    // Everything logged for step 26 shares one row, with the image referenced as a W&B image file.
    const last = rows[25] as any;
    expect(last.d_loss).toBe(0.5);
    expect(last['eval/fid']).toBe(12.5);
    expect(last.samples).toMatchObject({ _type: 'image-file', format: 'png', width: 4, height: 3, size: png.length });
    expect(last.samples.path).toMatch(/^media\/images\/samples_26_[0-9a-f]{20}\.png$/);

    // Summary: offset 0, one line holding the whole object with the latest values.
    const summaries = streams.map((r) => r.json.files?.['wandb-summary.json']).filter(Boolean);
    expect(summaries.every((x) => x.offset === 0 && x.content.length === 1)).toBe(true);
    expect(JSON.parse(summaries.at(-1).content[0])).toMatchObject({ d_loss: 0.5, g_loss: 25, 'eval/fid': 12.5 });

    // Media: CreateRunFiles names the file, the PUT carries its bytes and the upload headers, then `uploaded`.
    const create = graphql.find((r) => r.json.query.includes('mutation CreateRunFiles'))!;
    expect(create.json.variables).toEqual({ entity: 'team', project: 'gan-tests', run: run.runId, files: [last.samples.path] });
    const put = s.requests.find((r) => r.method === 'PUT')!;
    expect(put.url).toBe(`/storage/${last.samples.path}?signed=1`);
    expect(put.body.equals(png)).toBe(true);
    expect(put.headers['x-upload-check']).toBe('yes');
    expect(put.headers.authorization).toBeUndefined();
    expect(streams.some((r) => JSON.stringify(r.json.uploaded) === JSON.stringify([last.samples.path]))).toBe(true);

    // The last request completes the run.
    expect(streams.at(-1)!.json).toEqual({ complete: true, exitcode: 0 });
    expect(allText(dir)).not.toContain(KEY);
  });

  it('retries a 500 and then succeeds, resending the same offset exactly once', async () => {
    const s = await server();
    s.fail(/file_stream$/, 500, 1);
    s.fail(/graphql$/, 503, 1);
    const { run, warnings } = openRun(tmpRun(), s.baseUrl);
    for (let step = 1; step <= 5; step++) run.log(step, { d_loss: step });
    await run.flush(); // the background loop meets the 503, warns and backs off
    const result = await run.finish(0);
    expect(result.drained).toBe(true);
    const upserts = s.requests.filter((r) => r.url === '/graphql');
    expect(upserts.map((r) => r.status)).toEqual([503, 200]);
    const streams = s.requests.filter((r) => r.url.endsWith('/file_stream'));
    expect(streams.map((r) => r.status)).toEqual([500, 200, 200]);
    expect(streams[0].json).toEqual(streams[1].json);
    expect(s.acceptedHistory().map((r) => r._step)).toEqual([1, 2, 3, 4, 5]);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.join('\n')).not.toContain(KEY);
  });

  it('does not retry a 400; the data stays in the spool for sync', async () => {
    const s = await server();
    s.fail(/graphql$/, 400, 1);
    const dir = tmpRun();
    const { run, warnings } = openRun(dir, s.baseUrl);
    run.log(1, { d_loss: 1 });
    run.log(2, { d_loss: 2 });
    await run.flush();
    const result = await run.finish(1);
    expect(result.drained).toBe(false);
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0].status).toBe(400);
    expect(warnings.join('\n')).toMatch(/HTTP 400; not retrying.*gantry wandb sync/);
    // Sync sends everything later.
    const synced = await syncRun(dir, { apiKey: KEY, env: {}, retry: fast });
    expect(synced).toMatchObject({ drained: true, rows: 2 });
    expect(s.acceptedHistory().map((r) => r.d_loss)).toEqual([1, 2]);
    expect(s.fileStreams().at(-1)!.json).toEqual({ complete: true, exitcode: 1 });
  });

  it('never blocks the caller: rows go to disk while the server hangs', async () => {
    const s = await server();
    s.hold = true;
    const dir = tmpRun();
    const { run } = openRun(dir, s.baseUrl, { flushIntervalMs: 0, timeoutMs: 5000 });
    for (let step = 1; step <= 50; step++) run.log(step, { d_loss: step });
    run.commit();
    // log() is synchronous: all 50 rows are spooled although no request has been answered.
    const spooled = fs.readFileSync(path.join(dir, 'wandb-spool', 'history.jsonl'), 'utf8').trim().split('\n');
    expect(spooled).toHaveLength(50);
    s.release();
    const result = await run.finish(0);
    expect(result.drained).toBe(true);
    expect(s.acceptedHistory()).toHaveLength(50);
  });

  it('spools everything while the server is down; `sync` sends it later with contiguous offsets', async () => {
    const probe = await new FakeWandb().start();
    const port = probe.port;
    await probe.stop(); // nothing listens on this port now
    const dir = tmpRun();
    const { run, warnings } = openRun(dir, `http://127.0.0.1:${port}`, { finishTimeoutMs: 200, batchLines: 4 });
    for (let step = 1; step <= 10; step++) run.log(step, { d_loss: step / 10 });
    run.logImage(10, 'samples', Buffer.from('png-bytes'), { width: 1, height: 1 });
    const finished = await run.finish(0);
    expect(finished.drained).toBe(false);
    expect(warnings.join('\n')).toMatch(/ECONNREFUSED/);
    expect(warnings.at(-1)).toContain(`gantry wandb sync ${dir}`);

    const s = await new FakeWandb().start(port);
    servers.push(s);
    const synced = await syncRun(dir, { apiKey: KEY, env: {}, batchLines: 4, retry: fast });
    expect(synced).toMatchObject({ drained: true, rows: 10, files: 1, entity: 'team', project: 'gan-tests' });
    expect(s.acceptedHistory().map((r) => r._step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(s.requests.find((r) => r.method === 'PUT')!.body.toString()).toBe('png-bytes');
    expect(s.fileStreams().at(-1)!.json).toEqual({ complete: true, exitcode: 0 });
    // A second sync has nothing left to send and completes without new history.
    const again = await syncRun(dir, { apiKey: KEY, env: {}, retry: fast });
    expect(again).toMatchObject({ drained: true, rows: 0, files: 0 });
    expect(allText(dir)).not.toContain(KEY);
  });

  it('a resumed run keeps its W&B run id and continues the offsets', async () => {
    const s = await server();
    const dir = tmpRun();
    const first = openRun(dir, s.baseUrl).run;
    first.log(1, { d_loss: 1 });
    first.log(2, { d_loss: 2 });
    await first.finish(0);
    const { run: second, warnings } = openRun(dir, s.baseUrl);
    expect(second.runId).toBe(first.runId);
    second.log(2, { d_loss: 99 }); // already logged before the resume: skipped
    second.log(3, { d_loss: 3 });
    await second.finish(0);
    expect(warnings.join('\n')).toMatch(/step 2 is not after the last logged step 2/);
    expect(s.acceptedHistory().map((r) => [r._step, r.d_loss])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    const rows = s.acceptedHistory();
    expect(rows[2]._runtime as number).toBeGreaterThanOrEqual(rows[1]._runtime as number);
  });

  it('without an API key it only spools, and says how to send later', () => {
    const dir = tmpRun();
    const warnings: string[] = [];
    const run = new WandbRun({ dir, env: {}, onWarning: (m) => warnings.push(m) });
    run.log(1, { d_loss: 1 });
    run.commit();
    expect(warnings[0]).toMatch(/no API key.*gantry wandb sync/);
    expect(Spool.load(dir).unsentLines).toHaveLength(1);
  });
});
