import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { crc32c, maskCrc, unmaskCrc } from '../src/tensorboard/crc32c.js';
import { encodeVarint } from '../src/tensorboard/protobuf.js';
import { EventFileWriter } from '../src/tensorboard/writer.js';

// An independent bit-at-a-time CRC-32C, so the table version is checked against a second derivation.
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Field schema from TensorBoard's event.proto / summary.proto: field number → [name, wire type]. */
const SCHEMA = {
  Event: { 1: ['wall_time', 1], 2: ['step', 0], 3: ['file_version', 2], 5: ['summary', 2] },
  Summary: { 1: ['value', 2] },
  Value: { 1: ['tag', 2], 2: ['simple_value', 5], 4: ['image', 2] },
  Image: { 1: ['height', 0], 2: ['width', 0], 3: ['colorspace', 0], 4: ['encoded_image_string', 2] },
} as const satisfies Record<string, Record<number, readonly [string, number]>>;

type Decoded = Record<string, Array<number | bigint | Uint8Array>>;

/** A minimal protobuf reader that rejects unknown fields and wrong wire types for the given message. */
function decode(bytes: Uint8Array, message: keyof typeof SCHEMA): Decoded {
  const schema = SCHEMA[message] as Record<number, readonly [string, number]>;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Decoded = {};
  let pos = 0;
  const varint = () => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[pos++];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (pos < bytes.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    const spec = schema[field];
    if (!spec) throw new Error(`${message}: unexpected field ${field}`);
    if (spec[1] !== wire) throw new Error(`${message}.${spec[0]}: wire type ${wire}, expected ${spec[1]}`);
    let value: number | bigint | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = view.getFloat64(pos, true);
      pos += 8;
    } else if (wire === 5) {
      value = view.getFloat32(pos, true);
      pos += 4;
    } else {
      const len = Number(varint());
      value = bytes.subarray(pos, pos + len);
      pos += len;
    }
    (out[spec[0]] ??= []).push(value);
  }
  return out;
}

function readRecords(file: string): Uint8Array[] {
  const buf = new Uint8Array(fs.readFileSync(file));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: Uint8Array[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const len = Number(view.getBigUint64(pos, true));
    expect(unmaskCrc(view.getUint32(pos + 8, true))).toBe(crc32cBitwise(buf.subarray(pos, pos + 8)));
    const data = buf.subarray(pos + 12, pos + 12 + len);
    expect(unmaskCrc(view.getUint32(pos + 12 + len, true))).toBe(crc32cBitwise(data));
    records.push(data);
    pos += 16 + len;
  }
  expect(pos).toBe(buf.length);
  return records;
}

const text = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

describe('CRC-32C', () => {
  it('matches the published check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    // RFC 3720 (iSCSI) appendix B.4 vectors.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('agrees with a bitwise implementation on random data', () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 2654435761) >>> 24);
    expect(crc32c(data)).toBe(crc32cBitwise(data));
  });

  it('masks as TensorFlow does: rotate right by 15, add 0xa282ead8', () => {
    // 0xe3069283 rotated right by 15 = 0x2507c60d; + 0xa282ead8 = 0xc78ab0e5 (mod 2^32).
    expect(maskCrc(0xe3069283)).toBe(0xc78ab0e5);
    for (const v of [0, 1, 0xffffffff, 0x12345678]) expect(unmaskCrc(maskCrc(v))).toBe(v);
  });
});

describe('protobuf varint', () => {
  it('encodes per the protobuf spec', () => {
    expect(Array.from(encodeVarint(1n))).toEqual([1]);
    expect(Array.from(encodeVarint(150n))).toEqual([0x96, 0x01]);
    expect(Array.from(encodeVarint(300n))).toEqual([0xac, 0x02]);
    expect(encodeVarint(2n ** 40n).length).toBe(6);
  });
});

describe('EventFileWriter', () => {
  it('writes a TFRecord event file TensorBoard can read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-tb-'));
    const t0 = 1_700_000_123_456;
    const w = new EventFileWriter(dir, { now: () => t0, hostname: 'testhost' });
    expect(path.basename(w.file)).toBe('events.out.tfevents.1700000123.testhost');
    w.addScalars(7, { d_loss: 0.5, 'G/fm/loss': -1.25 }, t0 + 1000);
    const png = new PNG({ width: 3, height: 2 });
    png.data.fill(200);
    const encoded = PNG.sync.write(png);
    w.addImage(8, 'samples', { height: 2, width: 3, colorspace: 3, encoded }, t0 + 2000);
    w.close();

    const [first, second, third, ...rest] = readRecords(w.file);
    expect(rest).toHaveLength(0);
    const header = decode(first, 'Event');
    expect(text(header.file_version[0])).toBe('brain.Event:2');
    expect(header.wall_time[0]).toBeCloseTo(t0 / 1000, 6);

    const ev = decode(second, 'Event');
    expect(ev.step[0]).toBe(7n);
    expect(ev.wall_time[0]).toBeCloseTo(t0 / 1000 + 1, 6);
    const values = decode(ev.summary[0] as Uint8Array, 'Summary').value.map((v) => decode(v as Uint8Array, 'Value'));
    expect(values.map((v) => text(v.tag[0]))).toEqual(['d_loss', 'G/fm/loss']);
    expect(values.map((v) => v.simple_value[0])).toEqual([0.5, -1.25]);

    const img = decode(third, 'Event');
    expect(img.step[0]).toBe(8n);
    const [value] = decode(img.summary[0] as Uint8Array, 'Summary').value.map((v) => decode(v as Uint8Array, 'Value'));
    expect(text(value.tag[0])).toBe('samples');
    const image = decode(value.image[0] as Uint8Array, 'Image');
    expect([image.height[0], image.width[0], image.colorspace[0]]).toEqual([2n, 3n, 3n]);
    expect(Buffer.from(image.encoded_image_string[0] as Uint8Array).equals(encoded)).toBe(true);
  });

  it('never reuses a file name within the same second', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-tb-'));
    const a = new EventFileWriter(dir, { now: () => 1000, hostname: 'h' });
    const b = new EventFileWriter(dir, { now: () => 1000, hostname: 'h' });
    expect(a.file).not.toBe(b.file);
    a.close();
    b.close();
    expect(fs.readdirSync(dir)).toHaveLength(2);
  });
});
