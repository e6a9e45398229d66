import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Trainer } from '@gantry/core';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerWandb } from '../../cli/src/commands/wandb.js';
import { monitorPlugins } from '../src/index.js';
import { parseMetricsLog } from '../src/metrics-file.js';
import { FakeWandb } from './fake-wandb.js';
import { imageSource, tinyImageModels, useCpuBackend } from '@gantry/core/testing';
import { captureStream, eventTags, readTfRecords, tmpDir } from './helpers.js';

beforeAll(useCpuBackend);

// The CLI's own commander (v14), not whichever copy the repository root happens to hold.
const { Command } = createRequire(new URL('../../cli/package.json', import.meta.url))('commander') as {
  Command: new () => Parameters<typeof registerWandb>[0];
};

const KEY = 'bundle-test-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0';
const servers: FakeWandb[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  vi.unstubAllEnvs();
});

function allText(dir: string): string {
  let out = '';
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += fs.readFileSync(path.join(e.parentPath ?? (e as any).path, e.name), 'latin1');
  }
  return out;
}

describe('monitorPlugins', () => {
  it('fills a run folder: metrics, samples, TensorBoard, W&B, report, progress; tensors stay flat', async () => {
    const s = await new FakeWandb().start();
    servers.push(s);
    const runDir = tmpDir();
    const stream = captureStream();
    const plugins = monitorPlugins({
      runDir,
      quiet: true,
      sampleEvery: 10,
      tensorboard: true,
      wandb: { baseUrl: s.baseUrl, apiKey: KEY, project: 'p', entity: 'e', runName: 'bundle', flushIntervalMs: 20, retry: { initialMs: 5 } },
      reportEvery: 20,
      diagnostics: { thresholds: { collapseEvery: 10, collapseSamples: 16 } },
      stream,
    });
    expect(plugins.map((p) => p.name)).toEqual(['diagnostics', 'metrics-log', 'sample-grid', 'tensorboard', 'wandb', 'html-report', 'progress']);
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 30, batchSize: 8, seed: 3, plugins });
    const counts: number[] = [];
    trainer.on('step:end', () => void counts.push(tf.memory().numTensors));
    await trainer.train();
    expect(new Set(counts.slice(1)).size).toBe(1);

    // metrics.jsonl: a row per step with losses and gradient norms, diversity eval rows every 10 steps.
    const log = parseMetricsLog(fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8'));
    expect(log.steps.map((r) => r.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const r of log.steps) {
      expect(Number.isFinite(r.d_loss) && Number.isFinite(r.g_loss)).toBe(true);
      expect(r['diagnostics/grad_norm/D']).toBeGreaterThan(0);
      expect(r['diagnostics/grad_norm/G']).toBeGreaterThan(0);
    }
    expect(log.evals.map((e) => e.step)).toEqual([10, 20, 30]);
    expect(log.evals[0].metrics.diversity_variance).toBeGreaterThan(0);

    // Sample grids: 64 images of 4×4 in 8 columns with 2 px padding = 50×50 grayscale.
    const samples = fs.readdirSync(path.join(runDir, 'samples')).sort();
    expect(samples).toEqual(['step-000010.png', 'step-000020.png', 'step-000030.png']);
    const png = PNG.sync.read(fs.readFileSync(path.join(runDir, 'samples', samples[0])));
    expect([png.width, png.height]).toEqual([50, 50]);

    // TensorBoard: header, 30 scalar events, 3 eval events, 3 image events.
    const tb = fs.readdirSync(runDir).filter((f) => f.startsWith('events.out.tfevents.'));
    expect(tb).toHaveLength(1);
    const records = readTfRecords(path.join(runDir, tb[0]));
    expect(records).toHaveLength(1 + 30 + 3 + 3);
    const tags = records.slice(1).map(eventTags);
    expect(tags.filter((t) => t.includes('d_loss'))).toHaveLength(30);
    expect(tags.filter((t) => t.includes('samples'))).toHaveLength(3);
    expect(tags.filter((t) => t.includes('eval/diversity_variance'))).toHaveLength(3);

    // W&B: 30 history rows with images at 10/20/30, three uploads, completed with exit code 0.
    const rows = s.acceptedHistory();
    expect(rows.map((r) => r._step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(rows.filter((r) => (r.samples as any)?._type === 'image-file').map((r) => r._step)).toEqual([10, 20, 30]);
    expect(rows[9]['eval/diversity_variance']).toBeCloseTo(log.evals[0].metrics.diversity_variance, 6);
    expect(s.requests.filter((r) => r.method === 'PUT')).toHaveLength(3);
    expect(s.fileStreams().at(-1)!.json).toEqual({ complete: true, exitcode: 0 });
    expect(allText(runDir)).not.toContain(KEY);

    // Report and console.
    const html = fs.readFileSync(path.join(runDir, 'report.html'), 'utf8');
    expect(html).toContain('<div id="chart-losses">');
    expect(html).toContain('<div id="chart-grad-norms">');
    expect(html.match(/<figure class="sample"/g)).toHaveLength(3);
    const out = stream.text();
    expect(out).toContain('step 30/30 (100%)');
    expect(out).toMatch(/done: 30 steps in/);
  });

  it('keeps training while W&B is unreachable, reports it as an alert, and `gantry wandb sync` sends the spool', async () => {
    const probe = await new FakeWandb().start();
    const port = probe.port;
    await probe.stop();
    const runDir = tmpDir();
    const stream = captureStream();
    const plugins = monitorPlugins({
      runDir,
      quiet: true,
      sampleEvery: 5,
      report: false,
      wandb: { baseUrl: `http://127.0.0.1:${port}`, apiKey: KEY, project: 'p', entity: 'e', flushIntervalMs: 1, retry: { initialMs: 1, maxMs: 5 }, finishTimeoutMs: 100 },
      stream,
    });
    const trainer = new Trainer({ ...tinyImageModels(), data: imageSource(), steps: 10, batchSize: 8, seed: 3, plugins });
    // A slow step gives the background sender time to fail while training is still running.
    trainer.on('step:end', () => new Promise((r) => setTimeout(r, 15)));
    const result = await trainer.train();
    expect(result.steps).toBe(10);
    const log = parseMetricsLog(fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8'));
    const alert = log.alerts.find((a) => a.alert === 'wandb');
    expect(alert?.message).toMatch(/ECONNREFUSED/);
    expect(stream.text()).toMatch(/\[warning\] wandb at step \d+: W&B: .*ECONNREFUSED/);

    const s = await new FakeWandb().start(port);
    servers.push(s);
    vi.stubEnv('WANDB_API_KEY', KEY);
    vi.stubEnv('WANDB_BASE_URL', '');
    const program = new Command().exitOverride();
    registerWandb(program);
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((m: string) => void logged.push(m));
    try {
      await program.parseAsync(['node', 'gantry', 'wandb', 'sync', runDir]);
    } finally {
      spy.mockRestore();
    }
    expect(logged.join('\n')).toMatch(/W&B run e\/p\/[a-z0-9]{8}: sent 10 history rows and 2 files; nothing left to send/);
    expect(s.acceptedHistory().map((r) => r._step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(s.fileStreams().at(-1)!.json).toEqual({ complete: true, exitcode: 0 });
    expect(allText(runDir)).not.toContain(KEY);
  });
});
