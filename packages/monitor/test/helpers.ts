import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import '@tensorflow/tfjs-backend-cpu';

export const tmpDir = (prefix = 'gantry-monitor-') => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** A writable that keeps what it was given; `tty` makes it look like a terminal to cli-progress. */
export function captureStream(tty = false): Writable & { text(): string; isTTY?: boolean; columns?: number } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as Writable & { text(): string; isTTY?: boolean; columns?: number; cursorTo?: unknown; clearLine?: unknown; moveCursor?: unknown };
  stream.text = () => chunks.join('');
  if (tty) {
    stream.isTTY = true;
    stream.columns = 120;
    stream.cursorTo = (_x: number, _y?: number, cb?: () => void) => {
      chunks.push('\r');
      cb?.();
      return true;
    };
    stream.clearLine = (_d: number, cb?: () => void) => {
      cb?.();
      return true;
    };
    stream.moveCursor = (_dx: number, _dy: number, cb?: () => void) => {
      cb?.();
      return true;
    };
  }
  return stream;
}

/** Reads TFRecord framing (checking both masked CRCs are present) and returns the record payloads. */
export function readTfRecords(file: string): Uint8Array[] {
  const buf = new Uint8Array(fs.readFileSync(file));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const len = Number(view.getBigUint64(pos, true));
    out.push(buf.subarray(pos + 12, pos + 12 + len));
    pos += 16 + len;
  }
  return out;
}

/** The summary tags of one event payload (Event.summary = 5 → Summary.value = 1 → Value.tag = 1). */
export function eventTags(event: Uint8Array): string[] {
  const fields = (bytes: Uint8Array) => {
    const out: [number, Uint8Array | number][] = [];
    let pos = 0;
    const varint = () => {
      let r = 0;
      let mul = 1;
      for (;;) {
        const b = bytes[pos++];
        r += (b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80)) return r;
      }
    };
    while (pos < bytes.length) {
      const key = varint();
      const wire = key & 7;
      if (wire === 0) out.push([key >> 3, varint()]);
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else {
        const len = varint();
        out.push([key >> 3, bytes.subarray(pos, pos + len)]);
        pos += len;
      }
    }
    return out;
  };
  const summary = fields(event).find(([f]) => f === 5)?.[1];
  if (!(summary instanceof Uint8Array)) return [];
  return fields(summary)
    .filter(([f]) => f === 1)
    .map(([, v]) => new TextDecoder().decode(fields(v as Uint8Array).find(([f]) => f === 1)![1] as Uint8Array));
}
