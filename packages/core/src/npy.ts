import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { GantryError } from './errors.js';

/**
 * NumPy .npy files, format version 1.0: the magic "\x93NUMPY", version bytes 1 0, a little-endian uint16 header
 * length, then an ASCII dict literal padded with spaces and a final newline so that the data starts at a multiple
 * of 64 bytes, then the raw little-endian C-order data.
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export type NpyArray = Float32Array | Float64Array;

function descrOf(data: NpyArray): string {
  return data instanceof Float64Array ? '<f8' : '<f4';
}

/** The full header (magic through newline) for an array, padded to `minLength` bytes when given. */
export function npyHeader(descr: string, shape: readonly number[], minLength = 0): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const total = Math.max(minLength, Math.ceil(unpadded / 64) * 64);
  const headerLength = total - (MAGIC.length + 4);
  if (headerLength > 0xffff) throw new GantryError('npy header too long for format version 1.0');
  const bytes = new Uint8Array(total);
  bytes.set(MAGIC, 0);
  bytes[6] = 1;
  bytes[7] = 0;
  bytes[8] = headerLength & 0xff;
  bytes[9] = headerLength >> 8;
  const text = dict.padEnd(headerLength - 1, ' ') + '\n';
  for (let i = 0; i < text.length; i++) bytes[10 + i] = text.charCodeAt(i);
  return bytes;
}

function littleEndianBytes(data: NpyArray): Uint8Array {
  // Node only runs on little-endian hosts in practice; typed arrays use the host order.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Serialises a float32/float64 array of the given shape as .npy bytes. */
export function encodeNpy(data: NpyArray, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new GantryError(`npy shape [${shape.join(', ')}] holds ${count} values, data has ${data.length}`);
  const header = npyHeader(descrOf(data), shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(littleEndianBytes(data), header.length);
  return out;
}

/** Parses .npy bytes (versions 1.0–3.0, little-endian float32/float64, C order). */
export function decodeNpy(bytes: Uint8Array): { data: NpyArray; shape: number[] } {
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw new GantryError('not an .npy file (bad magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(start, start + headerLength)).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new GantryError(`malformed .npy header: ${header.trim()}`);
  if (fortran === 'True') throw new GantryError('Fortran-order .npy files are not supported');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const offset = start + headerLength;
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * (descr === '<f8' ? 8 : 4);
  if (bytes.length < offset + byteLength) throw new GantryError(`truncated .npy file: ${bytes.length - offset} data bytes, ${byteLength} expected`);
  // A copy (not a view: Buffer.slice shares memory, and its offset may not be aligned for the element size).
  const body = new Uint8Array(bytes.subarray(offset, offset + byteLength));
  if (descr === '<f4') return { data: new Float32Array(body.buffer, 0, count), shape };
  if (descr === '<f8') return { data: new Float64Array(body.buffer, 0, count), shape };
  throw new GantryError(`unsupported .npy dtype ${descr} (float32 and float64 only)`);
}

export function writeNpy(path: string, data: NpyArray, shape: readonly number[]): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, encodeNpy(data, shape));
  } finally {
    closeSync(fd);
  }
}

export function readNpy(path: string): { data: NpyArray; shape: number[] } {
  return decodeNpy(readFileSync(path));
}

/**
 * Writes a 2-D float32 .npy file row block by row block, for feature sets too large to hold. The header is written
 * with room to spare and rewritten with the final row count on close.
 */
export class NpyRowWriter {
  private readonly fd: number;
  private rows = 0;
  private static readonly HEADER_BYTES = 128;

  constructor(
    readonly path: string,
    readonly columns: number,
  ) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, npyHeader('<f4', [0, columns], NpyRowWriter.HEADER_BYTES));
  }

  append(block: Float32Array): void {
    if (block.length % this.columns !== 0) throw new GantryError(`npy block of ${block.length} values is not whole rows of ${this.columns}`);
    writeSync(this.fd, littleEndianBytes(block));
    this.rows += block.length / this.columns;
  }

  close(): number {
    const header = npyHeader('<f4', [this.rows, this.columns], NpyRowWriter.HEADER_BYTES);
    if (header.length !== NpyRowWriter.HEADER_BYTES) throw new GantryError('npy header outgrew its reserved space');
    writeSync(this.fd, header, 0, header.length, 0);
    closeSync(this.fd);
    return this.rows;
  }
}
