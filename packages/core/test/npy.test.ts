import { describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy } from '../src/npy.js';

describe('.npy encoding', () => {
  it('writes the exact NumPy 1.0 header NumPy itself writes', () => {
    const bytes = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    // np.save of a float32 (2, 3) array: 128-byte header block, then 24 data bytes.
    const header = String.fromCharCode(...bytes.subarray(10, 128));
    expect(header).toBe(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.padEnd(117) + '\n');
    expect(bytes.length).toBe(128 + 24);
    expect(Array.from(bytes.subarray(0, 10))).toEqual([0x93, 78, 85, 77, 80, 89, 1, 0, 118, 0]);
  });

  it('round-trips data and 1-D shapes', () => {
    const data = new Float32Array([0.5, -1.25, 3e-8]);
    const back = decodeNpy(encodeNpy(data, [3]));
    expect(back.shape).toEqual([3]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });
});
