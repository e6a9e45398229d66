import { crc32c, maskCrc } from './crc32c.js';
import { ProtoWriter } from './protobuf.js';

/**
 * Field numbers from TensorBoard's tensorboard/compat/proto/event.proto and summary.proto:
 *   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Summary.Value { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Summary.Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 */
export const EVENT_FIELDS = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
export const SUMMARY_FIELDS = { value: 1 } as const;
export const VALUE_FIELDS = { tag: 1, simpleValue: 2, image: 4 } as const;
export const IMAGE_FIELDS = { height: 1, width: 2, colorspace: 3, encodedImageString: 4 } as const;

export const FILE_VERSION = 'brain.Event:2';

/** Summary.Image colorspace codes. */
export const COLORSPACE = { grayscale: 1, grayscaleAlpha: 2, rgb: 3, rgba: 4 } as const;

export interface ImageSummary {
  height: number;
  width: number;
  /** 1 grayscale, 2 grayscale+alpha, 3 RGB, 4 RGBA. */
  colorspace: number;
  /** An encoded image (PNG). */
  encoded: Uint8Array;
}

export type SummaryValue = { tag: string; simpleValue: number } | { tag: string; image: ImageSummary };

export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter()
    .double(EVENT_FIELDS.wallTime, wallTime)
    .string(EVENT_FIELDS.fileVersion, FILE_VERSION)
    .finish();
}

export function encodeSummaryEvent(wallTime: number, step: number, values: readonly SummaryValue[]): Uint8Array {
  const summary = new ProtoWriter();
  for (const v of values) {
    const value = new ProtoWriter().string(VALUE_FIELDS.tag, v.tag);
    if ('simpleValue' in v) {
      value.float(VALUE_FIELDS.simpleValue, v.simpleValue);
    } else {
      const image = new ProtoWriter()
        .varint(IMAGE_FIELDS.height, v.image.height)
        .varint(IMAGE_FIELDS.width, v.image.width)
        .varint(IMAGE_FIELDS.colorspace, v.image.colorspace)
        .bytes(IMAGE_FIELDS.encodedImageString, v.image.encoded);
      value.message(VALUE_FIELDS.image, image);
    }
    summary.message(SUMMARY_FIELDS.value, value);
  }
  return new ProtoWriter()
    .double(EVENT_FIELDS.wallTime, wallTime)
    .varint(EVENT_FIELDS.step, step)
    .message(EVENT_FIELDS.summary, summary)
    .finish();
}

/**
 * One TFRecord: uint64 little-endian length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data
 * (all integers little-endian).
 */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskCrc(crc32c(out.subarray(0, 8))), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskCrc(crc32c(data)), true);
  return out;
}
