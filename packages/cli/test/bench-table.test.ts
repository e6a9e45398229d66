import { describe, expect, it } from 'vitest';
import { formatBenchTable, shortDetail } from '../src/commands/bench.js';

describe('gantry bench table', () => {
  it('puts every engine in one table with PyTorch ms / engine ms as the ratio', () => {
    const table = formatBenchTable(
      [
        { engine: 'tensorflow', detail: 'libtensorflow 2.21.0', ms: { 'non-saturating': 50, 'wgan-gp': 80 }, cpuMs: { 'non-saturating': 90, 'wgan-gp': 150.4 } },
        { engine: 'wasm', detail: 'XNNPACK, 2 threads', ms: { 'non-saturating': 400, 'wgan-gp': 500 } },
        { engine: 'pytorch', detail: 'PyTorch 2.14.1', ms: { 'non-saturating': 55, 'wgan-gp': 88 } },
      ],
      ['non-saturating', 'wgan-gp'],
      64,
    ).split('\n');
    expect(table[0]).toBe('| engine | non-saturating ms/step | WGAN-GP ms/step | non-saturating vs PyTorch | WGAN-GP vs PyTorch |');
    expect(table[2]).toBe('| tensorflow (libtensorflow 2.21.0) | 50.0 (CPU 90) | 80.0 (CPU 150) | 1.10× | 1.10× |');
    expect(table[3]).toBe('| wasm (XNNPACK, 2 threads) | 400.0 | 500.0 | 0.14× | 0.18× |');
    expect(table[4]).toBe('| pytorch (PyTorch 2.14.1) | 55.0 | 88.0 | 1.00× | 1.00× |');
  });

  it('has no ratio columns without a PyTorch row, and a dash for a loss not run', () => {
    const table = formatBenchTable([{ engine: 'wasm', detail: 'x', ms: { 'wgan-gp': 500 } }], ['non-saturating', 'wgan-gp'], 64).split('\n');
    expect(table[0]).toBe('| engine | non-saturating ms/step | WGAN-GP ms/step |');
    expect(table[2]).toBe('| wasm (x) | – | 500.0 |');
  });

  it("names the backend by its detail's head, with the FMA convolution and graph steps where they ran", () => {
    const wasm = 'XNNPACK, SIMD, 2 threads; Gantry kernels: Conv2DBackpropFilter, Conv2D; FMA conv, 2 threads';
    expect(shortDetail({ detail: wasm })).toBe('XNNPACK, SIMD, 2 threads, FMA conv');
    expect(shortDetail({ detail: 'XNNPACK, SIMD, 1 thread; Gantry kernels: Conv2D' })).toBe('XNNPACK, SIMD, 1 thread');
    expect(shortDetail({ detail: 'libtensorflow 2.21.0 (tensorflow-cpu 2.21.0 pip wheel; tfjs-node 4.22)', graph: { steps: 1 } })).toBe(
      'libtensorflow 2.21.0, graph steps',
    );
  });
});
