// Other packages compile this file from source (@gantry/source) without core's ambient declarations: name them here.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./seedrandom-alea.d.ts" />
import * as tf from '@tensorflow/tfjs-core';
import alea from 'seedrandom/lib/alea.js';
import { fastNormalValues } from './fast-normal.js';

/**
 * Which generator draws normal values (the Trainer's `normalGenerator` option): 'tfjs' (the default) draws exactly
 * `tf.randomNormal`'s numbers with `normalValues`; 'fast' draws other, equally distributed numbers with
 * `fastNormalValues` (a ziggurat), several times faster.
 */
export type NormalGenerator = 'tfjs' | 'fast';
export const NORMAL_GENERATORS: readonly NormalGenerator[] = ['tfjs', 'fast'];

/**
 * `count` float32 draws of N(mean, stdDev²) from `seed`: exactly the numbers of
 * `tf.randomNormal(shape, mean, stdDev, 'float32', seed)` (tfjs 4: seedrandom's Alea seeded with the seed's decimal
 * string, Marsaglia's polar method, pairs taken x then y), in about half its CPU time. tfjs calls a closure, a method
 * and a NaN check per value; here Alea's three-word state is stepped in local variables. Latents are the largest random
 * draw of a toy step (512 × 256 values per phase and member), and tfjs draws them in JavaScript on every backend.
 *
 * One deliberate difference: tfjs treats seed 0 as "no seed" and draws from Math.random; here 0 is a seed like any other.
 */
export function normalValues(count: number, mean: number, stdDev: number, seed: number): Float32Array {
  // Only the seeding (Mash over the string) comes from seedrandom; the recurrence below is Alea's step.
  let { c, s0, s1, s2 } = alea(String(seed), { state: true }).state();
  const out = new Float32Array(count);
  let i = 0;
  while (i < count) {
    let v1: number;
    let v2: number;
    let s: number;
    do {
      let t = 2091639 * s0 + c * 2.3283064365386963e-10; // 2^-32
      s0 = s1;
      s1 = s2;
      s2 = t - (c = t | 0);
      v1 = 2 * s2 - 1;
      t = 2091639 * s0 + c * 2.3283064365386963e-10;
      s0 = s1;
      s1 = s2;
      s2 = t - (c = t | 0);
      v2 = 2 * s2 - 1;
      s = v1 * v1 + v2 * v2;
    } while (s >= 1 || s === 0);
    const scale = Math.sqrt((-2.0 * Math.log(s)) / s);
    out[i++] = mean + stdDev * v1 * scale;
    if (i < count) out[i++] = mean + stdDev * v2 * scale;
  }
  return out;
}

/**
 * `tf.randomNormal(shape, mean, stdDev, 'float32', seed)`, the same values drawn faster (see `normalValues`); with
 * `generator` 'fast', values of `fastNormalValues` instead.
 */
export function randomNormal(shape: number[], seed: number, mean = 0, stdDev = 1, generator: NormalGenerator = 'tfjs'): tf.Tensor {
  const draw = generator === 'fast' ? fastNormalValues : normalValues;
  return tf.tensor(draw(tf.util.sizeFromShape(shape), mean, stdDev, seed), shape, 'float32');
}
