import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { GantryError } from '@gantry/core';
import { initWebGpu, tryWebGpu, webGpuPrerequisiteError, type WebGpuEnvironment } from '../src/webgpu.js';
import { addNInChunks, installFusedAdam, planFilterGradSplits } from '../src/webgpu-kernels.js';
import { useBackend } from '../src/backend.js';

// Everything here runs on the CPU: the GPU path is measured and checked on a GPU machine by scripts/gpu/.

const LOADER_MISSING = 'libvulkan.so.1: cannot open shared object file: No such file or directory';

function environment(overrides: Partial<WebGpuEnvironment> = {}): WebGpuEnvironment {
  return {
    platform: 'linux',
    canResolve: () => true,
    dlopen: () => {
      throw new Error("Module did not self-register: 'libvulkan.so.1'.");
    },
    ...overrides,
  };
}

describe('webGpuPrerequisiteError', () => {
  it('names both optional packages when they are missing', () => {
    const message = webGpuPrerequisiteError(environment({ canResolve: (p) => p !== 'webgpu' }));
    expect(message).toContain('install the optional packages webgpu and @tensorflow/tfjs-backend-webgpu');
    expect(message).toContain('(webgpu not found)');
    const both = webGpuPrerequisiteError(environment({ canResolve: () => false }));
    expect(both).toContain('(webgpu and @tensorflow/tfjs-backend-webgpu not found)');
  });

  it('reports a missing Vulkan loader on Linux from the dynamic loader message', () => {
    const message = webGpuPrerequisiteError(
      environment({
        dlopen: () => {
          throw new Error(LOADER_MISSING);
        },
      }),
    );
    expect(message).toBe(
      'WebGPU backend unavailable: no Vulkan loader (libvulkan.so.1) found; install libvulkan1 and the GPU driver (its Vulkan ICD)',
    );
  });

  it('accepts a loader that loads (a non-addon library fails later, with "did not self-register")', () => {
    expect(webGpuPrerequisiteError(environment())).toBeUndefined();
    expect(webGpuPrerequisiteError(environment({ dlopen: () => undefined }))).toBeUndefined();
  });

  it('does not look for libvulkan off Linux', () => {
    let probed = false;
    const env = environment({
      platform: 'darwin',
      dlopen: () => {
        probed = true;
        throw new Error(LOADER_MISSING);
      },
    });
    expect(webGpuPrerequisiteError(env)).toBeUndefined();
    expect(probed).toBe(false);
  });
});

describe('initWebGpu on this machine', () => {
  const reason = webGpuPrerequisiteError();
  // On a machine without libvulkan (CI, this repo's dev box) the real error path runs; elsewhere it is skipped.
  it.runIf(reason?.includes('no Vulkan loader'))('throws a one-line GantryError naming the missing loader', async () => {
    const err = await initWebGpu().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GantryError);
    expect((err as Error).message).toContain('no Vulkan loader (libvulkan.so.1) found');
    expect((err as Error).message).not.toContain('\n');
    const attempt = await tryWebGpu();
    expect(attempt).toEqual({ ok: false, reason: (err as Error).message });
  });
});

describe('planFilterGradSplits', () => {
  it('covers every K index exactly once with whole 16-wide tiles', () => {
    for (const [m, n, k] of [
      [16, 64, 1024 * 196],
      [1024, 128, 1024 * 49],
      [1024, 128, 64 * 49],
      [45, 3, 63],
      [7, 7, 1],
      [4096, 4096, 100_000],
    ]) {
      const { splits, kPerSplit } = planFilterGradSplits(m, n, k);
      expect(kPerSplit % 16).toBe(0);
      expect(splits * kPerSplit).toBeGreaterThanOrEqual(k);
      expect((splits - 1) * kPerSplit).toBeLessThan(k);
      expect(splits).toBeGreaterThanOrEqual(1);
    }
    // A small GEMM with a long K: 1 tile, split into 256-long pieces (the floor) before 1024 workgroups are reached.
    expect(planFilterGradSplits(16, 64, 200_704)).toEqual({ splits: 784, kPerSplit: 256 });
    // 16 x 2 tiles: 32 splits.
    expect(planFilterGradSplits(1024, 128, 50_176)).toEqual({ splits: 32, kPerSplit: 1568 });
  });
});

describe('fused Adam patch', () => {
  it('leaves tf.train.adam exact on other backends (first step: x - lr * g / (|g| + eps))', async () => {
    await useBackend('cpu', { quiet: true });
    installFusedAdam();
    installFusedAdam(); // idempotent
    const x0 = [0.5, -1.25, 2, 0.001];
    const g = [0.1, -3, 0, 1e-4];
    const lr = 0.01;
    const x = tf.variable(tf.tensor1d(x0), true, 'fusedAdamTestX');
    const opt = tf.train.adam(lr, 0.9, 0.999, 1e-7);
    const before = tf.memory().numTensors;
    opt.applyGradients({ fusedAdamTestX: tf.tensor1d(g) } as unknown as Parameters<typeof opt.applyGradients>[0]);
    const got = Array.from(await x.data());
    // m1 = (1-b1) g, v1 = (1-b2) g^2, bias corrections divide them back: mHat = g, vHat = g^2.
    const want = x0.map((v, i) => v - (lr * g[i]) / (Math.abs(g[i]) + 1e-7));
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    // Moments m and v were created (2 tensors) and nothing else leaked (the gradient is ours to dispose).
    expect(tf.memory().numTensors - before).toBe(2 + 1);
    expect((await opt.getWeights()).map((w) => w.name)).toEqual(['iter', 'fusedAdamTestX/m', 'fusedAdamTestX/v']);
    opt.dispose();
    x.dispose();
  });
});

describe('addNInChunks', () => {
  it('sums 20 inputs with at most 7 per call, frees every partial sum, and equals one AddN', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => tf.tensor1d([i, 2 * i + 0.5, -i]));
    const chunkSizes: number[] = [];
    const partials: tf.Tensor[] = [];
    const before = tf.memory().numTensors;
    const sum = addNInChunks(
      inputs,
      7,
      (chunk) => {
        chunkSizes.push(chunk.length);
        const t = tf.addN(chunk as tf.Tensor[]);
        partials.push(t);
        return t;
      },
      (t) => (t as tf.Tensor).dispose(),
    ) as tf.Tensor;
    // 20 → chunks of 7, 7, 6 → one final call over the 3 partial sums.
    expect(chunkSizes).toEqual([7, 7, 6, 3]);
    expect(partials.slice(0, 3).every((t) => t.isDisposed)).toBe(true);
    expect(tf.memory().numTensors).toBe(before + 1);
    // Closed form: Σi = 190, Σ(2i + 0.5) = 390, Σ(−i) = −190.
    expect(Array.from(await sum.data())).toEqual([190, 390, -190]);
    // 43 inputs at 3 per call take three levels (15 → 5 → 2 → final); one input needs no partial.
    const many = Array.from({ length: 43 }, () => tf.scalar(1));
    const calls: number[] = [];
    const total = addNInChunks(many, 3, (c) => (calls.push(c.length), tf.addN(c as tf.Tensor[])), (t) => (t as tf.Tensor).dispose()) as tf.Tensor;
    expect(await total.data()).toEqual(new Float32Array([43]));
    expect(calls.filter((n) => n > 3)).toEqual([]);
    tf.dispose([sum, total, ...inputs, ...many]);
  });
});
