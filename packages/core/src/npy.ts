/**
 * NumPy .npy (format 1.0) encoding for float32 arrays, so samples and features open with `np.load`.
 * Header: magic "\x93NUMPY", version 1.0, little-endian uint16 header length, a Python dict literal padded with
 * spaces to a multiple of 64 bytes and ending in "\n".
 */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`encodeNpy: shape [${shape}] holds ${count} values but data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = 10;
  header += ' '.repeat(64 - ((preamble + header.length + 1) % 64 || 64)) + '\n';
  const out = new Uint8Array(preamble + header.length + data.byteLength);
  out.set([0x93, ...Array.from('NUMPY', (c) => c.charCodeAt(0)), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[preamble + i] = header.charCodeAt(i);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // Float32Array is platform-endian; every platform Node runs on is little-endian.
  out.set(body, preamble + header.length);
  return out;
}

/** Decodes a little-endian float32 .npy file written by encodeNpy (or NumPy). */
export function decodeNpy(bytes: Uint8Array): { data: Float32Array; shape: number[] } {
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new Error('Not a .npy file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = String.fromCharCode(...bytes.subarray(start, start + headerLen));
  if (!header.includes("'<f4'")) throw new Error(`Only little-endian float32 .npy is supported (header: ${header.trim()})`);
  if (header.includes("'fortran_order': True")) throw new Error('Fortran-order .npy is not supported');
  const shape = (header.match(/'shape': \(([^)]*)\)/)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const offset = start + headerLen;
  const data = new Float32Array(bytes.slice(offset).buffer);
  return { data, shape };
}
