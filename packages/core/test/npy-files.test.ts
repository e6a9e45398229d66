import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NpyRowWriter, decodeNpy, encodeNpy, readNpy, writeNpy } from '../src/npy.js';

const dir = mkdtempSync(join(tmpdir(), 'gantry-npy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('.npy files', () => {
  it('write a version 1.0 header that numpy would read', () => {
    const bytes = encodeNpy(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = bytes[8] | (bytes[9] << 8);
    expect((10 + headerLength) % 64).toBe(0);
    const header = Buffer.from(bytes.subarray(10, 10 + headerLength)).toString('latin1');
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(bytes.length).toBe(10 + headerLength + 24);
    expect(new Float32Array(bytes.slice(10 + headerLength).buffer)).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6));
  });

  it('round-trip float32 and float64 arrays through files', () => {
    const f32 = Float32Array.from({ length: 30 }, (_, i) => i / 7);
    writeNpy(join(dir, 'a.npy'), f32, [10, 3]);
    expect(readNpy(join(dir, 'a.npy'))).toEqual({ data: f32, shape: [10, 3] });
    const f64 = Float64Array.of(Math.PI, -1e300, 5e-324);
    const back = decodeNpy(encodeNpy(f64, [3]));
    expect(back.shape).toEqual([3]);
    expect(back.data).toEqual(f64);
  });

  it('stream rows and fix the row count in the header at close', () => {
    const w = new NpyRowWriter(join(dir, 'rows.npy'), 2);
    w.append(Float32Array.of(1, 2, 3, 4));
    w.append(Float32Array.of(5, 6));
    expect(w.close()).toBe(3);
    const { data, shape } = readNpy(join(dir, 'rows.npy'));
    expect(shape).toEqual([3, 2]);
    expect(data).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6));
    expect(readFileSync(join(dir, 'rows.npy')).length).toBe(128 + 24);
  });

  it('rejects a shape that does not match the data', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow(/holds 6 values, data has 5/);
  });
});
