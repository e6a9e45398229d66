/**
 * Where a toy step's time goes (a benchmark, not a test): trains the 2-D mixture GANs of `mode-coverage.ts` for a few
 * steps on one backend and prints, per variant, CPU and wall milliseconds per step and the engine's kernel calls per
 * step. CPU time (user + system of this process) is the number to compare on a shared machine; wall time is printed
 * beside it with the load average. `--breakdown` (tensorflow) splits the CPU time of a step into TensorFlow's graph
 * runs, uploads, normal draws, tfjs's JavaScript, the graph capture's bookkeeping and the rest, and counts the matrix
 * products' FLOPs; `--hash` prints a hash of the weights after the run (a change that keeps every number keeps it).
 * `--fast-normals` draws the latents with the ziggurat (Trainer option `normalGenerator: 'fast'`): other numbers.
 *
 *   nice npx tsx --conditions=@gantry/source scripts/toy-speed.ts --backend wasm --variants gan,pacgan2,unrolled
 *   TF_NUM_INTRAOP_THREADS=1 nice npx tsx --conditions=@gantry/source scripts/toy-speed.ts --backend tensorflow \
 *     --protocol reference --variants gan,unrolled --members 3 --graph --breakdown --hash
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { Session } from 'node:inspector';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { captureSteps, kernelFlops, useBackend, type BackendName } from '@gantry/engine';
import { mixture, protocolNamed, toyTrainer } from './toy-protocol.js';

const opts = new Command()
  .option('--data <name>', 'ring or grid', 'ring')
  .option('--variants <list>', 'gan, unrolled, unrolled-first-order, pacgan2, …', 'gan,pacgan2,unrolled')
  .option('--protocol <name>', 'reference or gantry', 'reference')
  .option('--warmup <n>', 'steps before timing starts', '5')
  .option('--steps <n>', 'timed steps', '20')
  .option('--backend <name>', 'backend', 'wasm')
  .option('--threads <n>', 'threads', '1')
  .option('--graph', 'tensorflow backend: run recorded steps as TensorFlow graphs (captureSteps)')
  .option('--xla', 'tensorflow backend, with --graph: compile the graph steps with XLA (fused element-wise ops; other last bits)')
  .option('--members <n>', 'seeds 1…n trained as members of one model (stackMembers)', '1')
  .option('--breakdown', "tensorflow: split the timed steps' CPU time (graph runs, uploads, normal draws, JavaScript) with timers and a profile")
  .option('--profile <file>', 'with --breakdown: also write the timed steps\' CPU profile (.cpuprofile) there')
  .option('--fast-normals', "draw the latents with the fast ziggurat (Trainer option normalGenerator 'fast'): other numbers")
  .option('--hash', "print a hash of the trained weights (to check that a change leaves every number the same)")
  .parse()
  .opts<{
    data: string;
    variants: string;
    protocol: string;
    warmup: string;
    steps: string;
    backend: string;
    threads: string;
    members: string;
    graph?: boolean;
    xla?: boolean;
    breakdown?: boolean;
    profile?: string;
    hash?: boolean;
    fastNormals?: boolean;
  }>();

const choice = await useBackend(opts.backend as BackendName, { quiet: true, threads: Number(opts.threads), xla: opts.xla });
const protocol = protocolNamed(opts.protocol);
const data = mixture(opts.data);
const warmup = Number(opts.warmup);
const timed = Number(opts.steps);

// Count every kernel the engine dispatches (forward, gradient and optimizer ops alike).
const engine = tf.engine() as unknown as { runKernelFunc: (...args: unknown[]) => unknown };
const runKernelFunc = engine.runKernelFunc.bind(engine);
let kernelCalls = 0;
/** FLOPs of the matrix products the engine was asked for (the bench's `kernelFlops`: 2·batch·m·n·k per product). */
let matMulFlops = 0;
const MATMULS = new Set([tf.BatchMatMul, tf._FusedMatMul]);
/** Matrix-product kernels running now: one made of another (the fused Dense product runs a BatchMatMul) counts once. */
let matMulDepth = 0;
engine.runKernelFunc = (...args: unknown[]) => {
  kernelCalls++;
  const params = args[0] as { kernelName?: string; inputs?: Record<string, tf.TensorInfo> };
  const name = params.kernelName;
  if (name === undefined || !MATMULS.has(name)) return runKernelFunc(...args);
  matMulDepth++;
  let out: unknown;
  try {
    out = runKernelFunc(...args);
  } finally {
    matMulDepth--;
  }
  if (matMulDepth === 0) {
    const { a, b } = params.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const result = (Array.isArray(out) ? out[0] : out) as tf.Tensor;
    matMulFlops += kernelFlops(name, [a.shape, b.shape], [result.shape]);
  }
  return out;
};

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/**
 * `--breakdown`: the addon's calls timed one by one (graph runs, tensor uploads, reads, eager ops), the rest of the
 * step's CPU time (JavaScript) split by a sampling profile of the timed steps: normal draws (`normalValues`), tfjs,
 * the graph capture's own bookkeeping, other Gantry code, garbage collection.
 */
const ADDON_CALLS = ['runSavedModel', 'createTensor', 'tensorDataSync', 'executeOp'] as const;
type AddonCall = (typeof ADDON_CALLS)[number];
const addonCpu = Object.fromEntries(ADDON_CALLS.map((name) => [name, 0])) as Record<AddonCall, number>;
const addonWall = { ...addonCpu };
const addonCalls = { ...addonCpu };
/** Between the timed steps' start and end. */
let counting = false;
/** CPU ms of each graph run of the step under way, and of every timed step's graph runs. */
let stepRuns: number[] = [];
const runsPerStep: number[][] = [];
/** Eager ops by name: CPU ms, calls, output elements (where an eager step's time goes op by op). */
const eagerOps = new Map<string, { ms: number; calls: number; elements: number }>();
if (opts.breakdown) {
  if (opts.backend !== 'tensorflow') throw new Error('--breakdown times the tensorflow addon: use --backend tensorflow');
  // The addon's exports are read-only: wrap them as graph-capture.ts does, before a capture takes the binding.
  const backend = tf.backend() as unknown as { binding: Record<AddonCall, (...args: unknown[]) => unknown> };
  const binding = backend.binding;
  backend.binding = Object.create(
    binding,
    Object.fromEntries(
      ADDON_CALLS.map((name) => {
        const call = binding[name];
        // Named so that the profile files the addon's time under it (a native call's samples go to its JS caller).
        // CPU time, not wall: a loaded machine's waits inside a call would count as the call's.
        const timed = function addonCall(...args: unknown[]) {
          const cpu = cpuMs();
          const wall = performance.now();
          const result = call.apply(binding, args);
          addonWall[name] += performance.now() - wall;
          const ms = cpuMs() - cpu;
          addonCpu[name] += ms;
          addonCalls[name]++;
          if (name === 'runSavedModel' && counting) stepRuns.push(ms);
          if (name === 'executeOp' && counting) {
            const entry = eagerOps.get(args[0] as string) ?? { ms: 0, calls: 0, elements: 0 };
            entry.ms += ms;
            entry.calls++;
            for (const out of result as { shape: number[] }[]) entry.elements += tf.util.sizeFromShape(out.shape);
            eagerOps.set(args[0] as string, entry);
          }
          return result;
        };
        return [name, { value: timed }];
      }),
    ),
  );
}

/** The functions that draw normal values: tf.randomNormal's numbers, or the ziggurat's with --fast-normals. */
const NORMAL_DRAWS = new Set(['normalValues', 'randomNormal', 'fastNormalValues', 'outsideRectangle', 'oneNormal']);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/** Share of the profile's samples per part of the JavaScript (a native call's time counts for its caller). */
function profileShares(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }): Record<string, number> {
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const nodeOf = new Map(profile.nodes.map((node) => [node.id, node]));
  const partOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = partOf.get(id);
    if (known) return known;
    let part: string | undefined;
    for (let at: number | undefined = id; at !== undefined && part === undefined; at = parentOf.get(at)) {
      const { functionName, url } = nodeOf.get(at)!.callFrame;
      if (functionName.startsWith('addonCall')) part = 'addon';
      // randomNormal: V8 inlines normalValues (or fastNormalValues) into it.
      else if (NORMAL_DRAWS.has(functionName)) part = 'normal draws';
      else if (url === 'node:inspector') part = 'profiler';
    }
    if (part === undefined) {
      const { functionName, url } = nodeOf.get(id)!.callFrame;
      const parent = parentOf.get(id);
      if (functionName === '(garbage collector)') part = 'garbage collection';
      else if (functionName === '(idle)' || functionName === '(program)') part = 'idle, program';
      // A native function (the addon's deleteTensor, a builtin) counts for its caller.
      else if (url === '' && parent !== undefined) part = classify(parent);
      else if (url.includes('@tensorflow')) part = 'tfjs';
      else if (url.includes('graph-capture')) part = 'capture bookkeeping';
      else if (url.includes('/packages/')) part = 'other Gantry';
      else part = 'other';
    }
    partOf.set(id, part);
    return part;
  };
  const shares: Record<string, number> = {};
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const part = classify(id);
    shares[part] = (shares[part] ?? 0) + dt;
  });
  for (const part of Object.keys(shares)) shares[part]! /= total;
  return shares;
}

const inspector = opts.breakdown ? new Session() : undefined;
const post = (method: string, params?: object) =>
  new Promise<any>((resolve, reject) => inspector!.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))));
if (inspector) {
  inspector.connect();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 1000 });
}

async function weightsHash(models: { getWeights(): tf.Tensor[] }[]): Promise<string> {
  const hash = createHash('sha256');
  for (const model of models) for (const weight of model.getWeights()) hash.update(new Uint8Array((await weight.data()).buffer));
  return hash.digest('hex').slice(0, 16);
}

console.log(`backend ${tf.getBackend()} (${choice.detail ?? ''}), load average ${loadavg()[0].toFixed(1)}`);
const normals = opts.fastNormals ? ', fast normals' : '';
console.log(`| ${opts.data} (${opts.protocol}, ${opts.members} member(s)${normals}) on ${opts.backend} | CPU ms/step | wall ms/step | steps/s (CPU) | kernel calls/step |`);
console.log('| --- | --- | --- | --- | --- |');
const breakdowns: string[] = [];
for (const variant of opts.variants.split(',')) {
  const seeds = Array.from({ length: Number(opts.members) }, (_, i) => i + 1);
  const capture = opts.graph ? captureSteps() : undefined;
  const normalGenerator = opts.fastNormals ? 'fast' : 'tfjs';
  const trainer = await toyTrainer({ protocol, variant, data, seeds, steps: warmup + timed, stepRunner: capture?.run, normalGenerator });
  let start = { cpu: 0, wall: 0, kernels: 0, flops: 0, addonCpu: { ...addonCpu }, addonWall: { ...addonWall }, addonCalls: { ...addonCalls } };
  let end = start;
  let profiling: Promise<unknown> | undefined;
  let stopped: Promise<{ profile: Parameters<typeof profileShares>[0] }> | undefined;
  trainer.on('step:end', ({ step }) => {
    const now = { cpu: cpuMs(), wall: performance.now(), kernels: kernelCalls, flops: matMulFlops, addonCpu: { ...addonCpu }, addonWall: { ...addonWall }, addonCalls: { ...addonCalls } };
    if (counting) runsPerStep.push(stepRuns);
    stepRuns = [];
    if (step === warmup) {
      start = now;
      counting = true;
      if (inspector) profiling = post('Profiler.start');
    }
    if (step === warmup + timed) {
      end = now;
      counting = false;
      if (inspector) stopped = profiling!.then(() => post('Profiler.stop'));
    }
  });
  await trainer.train();
  const cpu = (end.cpu - start.cpu) / timed;
  const wall = (end.wall - start.wall) / timed;
  console.log(`| ${variant} | ${cpu.toFixed(1)} | ${wall.toFixed(1)} | ${(1000 / cpu).toFixed(1)} | ${Math.round((end.kernels - start.kernels) / timed)} |`);
  if (capture) console.log(JSON.stringify(capture.stats));
  if (opts.hash) console.log(`weights after ${warmup + timed} steps: ${await weightsHash([trainer.generator, trainer.discriminator])}`);
  if (stopped) {
    const { profile } = await stopped;
    if (opts.profile) writeFileSync(opts.profile.replace(/(\.cpuprofile)?$/, `-${variant}.cpuprofile`), JSON.stringify(profile));
    const shares = profileShares(profile);
    const perStep = (from: Record<AddonCall, number>, to: Record<AddonCall, number>, name: AddonCall) => (to[name] - from[name]) / timed;
    const addon = ADDON_CALLS.map((name) => perStep(start.addonCpu, end.addonCpu, name));
    const javascript = cpu - addon.reduce((a, b) => a + b, 0);
    const jsShare = 1 - (shares.addon ?? 0) - (shares.profiler ?? 0) - (shares['idle, program'] ?? 0);
    const parts: [string, number][] = [
      [`graph runs (${perStep(start.addonCalls, end.addonCalls, 'runSavedModel')} runSavedModel)`, addon[0]!],
      [`uploads (${perStep(start.addonCalls, end.addonCalls, 'createTensor')} createTensor)`, addon[1]!],
      ['reads (tensorDataSync)', addon[2]!],
      ['eager ops (executeOp)', addon[3]!],
      ...['normal draws', 'tfjs', 'capture bookkeeping', 'other Gantry', 'garbage collection', 'other'].map(
        (part): [string, number] => [part, (javascript * (shares[part] ?? 0)) / jsShare],
      ),
    ];
    const runWall = perStep(start.addonWall, end.addonWall, 'runSavedModel');
    const gflops = (end.flops - start.flops) / timed / 1e9;
    // Median CPU ms of each step's first, second, … graph run (a read part way through a step splits it).
    const runCount = Math.max(0, ...runsPerStep.map((runs) => runs.length));
    const runMedians = Array.from({ length: runCount }, (_, k) => {
      const times = runsPerStep.map((runs) => runs[k]).filter((ms): ms is number => ms !== undefined).sort((a, b) => a - b);
      return times[times.length >> 1]!.toFixed(1);
    });
    runsPerStep.length = 0;
    breakdowns.push(
      `${variant}: CPU ms per step ${cpu.toFixed(1)} (wall ${wall.toFixed(1)}; graph runs ${runWall.toFixed(1)} of it) = ` +
        parts.map(([part, ms]) => `${part} ${ms.toFixed(1)}`).join(', ') +
        (runCount > 0 ? `; graph runs in step order ${runMedians.join(' + ')} (medians)` : '') +
        `; matrix products ${gflops.toFixed(2)} GFLOP per step`,
    );
    if (eagerOps.size > 0) {
      const ops = [...eagerOps].sort((x, y) => y[1].ms - x[1].ms).slice(0, 15);
      breakdowns.push(
        '  eager ops by CPU time (ms, calls, output elements per step): ' +
          ops.map(([op, e]) => `${op} ${(e.ms / timed).toFixed(1)} ${Math.round(e.calls / timed)} ${(e.elements / timed / 1e6).toFixed(2)}M`).join(', '),
      );
      eagerOps.clear();
    }
  }
  capture?.dispose();
  trainer.generator.dispose();
  trainer.discriminator.dispose();
}
if (breakdowns.length > 0) {
  console.log('\nWhere the CPU time goes (addon calls timed one by one; the JavaScript split by a sampling profile):');
  for (const line of breakdowns) console.log(line);
}
