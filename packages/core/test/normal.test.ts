import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalValues, randomNormal } from '../src/normal.js';
import { useCpuBackend } from '../src/testing.js';

beforeAll(useCpuBackend);

describe('normalValues / randomNormal', () => {
  it('draw exactly the numbers of tf.randomNormal for the same seed (odd and even counts, mean and std)', () => {
    const cases: [number[], number, number, number][] = [
      [[512, 256], 0, 1, 1],
      [[7, 3], 0, 1, 4294967295],
      [[1001, 2], 0.5, 0.02, 123456789],
      [[1], -3, 2, 42],
      [[3, 5, 2], 0, 1, 2654435769],
    ];
    for (const [shape, mean, std, seed] of cases) {
      const reference = tf.randomNormal(shape, mean, std, 'float32', seed);
      const fast = randomNormal(shape, seed, mean, std);
      expect(fast.shape).toEqual(shape);
      expect(fast.dtype).toBe('float32');
      // Bit for bit: the same float32 values, not merely close ones.
      expect(Array.from(fast.dataSync())).toEqual(Array.from(reference.dataSync()));
      tf.dispose([reference, fast]);
    }
  });

  it('is a standard normal: mean, variance and tail mass of 200 000 draws', () => {
    const x = normalValues(200_000, 0, 1, 7);
    let sum = 0;
    let squares = 0;
    let beyond2 = 0;
    for (const v of x) {
      sum += v;
      squares += v * v;
      if (Math.abs(v) > 2) beyond2++;
    }
    const n = x.length;
    // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032, P(|x| > 2) = 0.0455 ± 0.0005.
    expect(Math.abs(sum / n)).toBeLessThan(0.01);
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.015);
    expect(Math.abs(beyond2 / n - 0.0455)).toBeLessThan(0.002);
  });

  it('treats seed 0 as a seed (tfjs would draw from Math.random)', () => {
    expect(Array.from(normalValues(5, 0, 1, 0))).toEqual(Array.from(normalValues(5, 0, 1, 0)));
  });
});
