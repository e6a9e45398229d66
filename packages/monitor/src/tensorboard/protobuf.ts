/**
 * The handful of protobuf encodings an event file needs (varint, 32/64-bit fixed, length-delimited), written by
 * hand: the TensorBoard messages involved have a few fields each, which does not justify a protobuf runtime.
 */
const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): this {
    this.parts.push(bytes);
    this.size += bytes.length;
    return this;
  }

  private key(field: number, wire: WireType): this {
    return this.push(encodeVarint(BigInt(field) * 8n + BigInt(wire)));
  }

  /** int32, int64, uint32, uint64, bool and enum fields. Negative values use the 10-byte two's-complement form as protobuf does. */
  varint(field: number, value: number | bigint): this {
    let v = BigInt(value);
    if (v < 0n) v = BigInt.asUintN(64, v);
    return this.key(field, WireType.Varint).push(encodeVarint(v));
  }

  double(field: number, value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    return this.key(field, WireType.Fixed64).push(b);
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.key(field, WireType.Fixed32).push(b);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, WireType.LengthDelimited).push(encodeVarint(BigInt(value.length))).push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

export function encodeVarint(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError('encodeVarint: negative value');
  const bytes: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Uint8Array.from(bytes);
}
