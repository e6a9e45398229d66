/**
 * A small WebAssembly binary assembler: just what Gantry's hand-written SIMD kernels need (i32 and v128 locals,
 * loops, loads and stores, f32x4 arithmetic and relaxed SIMD's fused multiply-add), so that the modules are built from
 * source at run time and no binary is committed. Reference: the WebAssembly core spec's binary format, the SIMD and
 * relaxed-SIMD proposals' opcode tables.
 */

export const I32 = 0x7f;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const sized = (bytes: number[]): number[] => [...uleb(bytes.length), ...bytes];
const name = (s: string): number[] => sized([...new TextEncoder().encode(s)]);
const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const memarg = (align: number, offset: number): number[] => [...uleb(align), ...uleb(offset)];

/**
 * One function body. Locals are declared by name; instructions are appended in stack-machine order. Every method
 * returns `this`, so a body reads as a sequence: `f.get('a').get('b').i32Add().set('c')`.
 */
export class FunctionBuilder {
  readonly params: { name: string; type: ValueType }[];
  private readonly locals: { name: string; type: ValueType }[] = [];
  private readonly index = new Map<string, number>();
  private readonly code: number[] = [];
  private depth = 0;

  constructor(
    readonly exportName: string,
    params: [string, ValueType][],
  ) {
    this.params = params.map(([n, type]) => ({ name: n, type }));
    this.params.forEach((p, i) => this.index.set(p.name, i));
  }

  local(localName: string, type: ValueType): this {
    if (this.index.has(localName)) throw new Error(`wasm assembler: local ${localName} declared twice`);
    this.index.set(localName, this.params.length + this.locals.length);
    this.locals.push({ name: localName, type });
    return this;
  }

  private at(localName: string): number {
    const i = this.index.get(localName);
    if (i == null) throw new Error(`wasm assembler: unknown local ${localName}`);
    return i;
  }

  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  get(l: string): this {
    return this.op(0x20, ...uleb(this.at(l)));
  }
  set(l: string): this {
    return this.op(0x21, ...uleb(this.at(l)));
  }
  tee(l: string): this {
    return this.op(0x22, ...uleb(this.at(l)));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n));
  }
  i32Add(): this {
    return this.op(0x6a);
  }
  i32Sub(): this {
    return this.op(0x6b);
  }
  i32Mul(): this {
    return this.op(0x6c);
  }
  i32Shl(): this {
    return this.op(0x74);
  }
  i32Eq(): this {
    return this.op(0x46);
  }
  i32LtU(): this {
    return this.op(0x49);
  }
  i32GtU(): this {
    return this.op(0x4b);
  }
  i32LeU(): this {
    return this.op(0x4d);
  }
  /** Pops c, b, a; pushes c ? a : b. */
  select(): this {
    return this.op(0x1b);
  }
  i32Load(offset = 0): this {
    return this.op(0x28, ...memarg(2, offset));
  }
  v128Load(offset = 0): this {
    return this.op(...simd(0x00), ...memarg(4, offset));
  }
  /** Loads one f32 and repeats it in all four lanes. */
  v128Load32Splat(offset = 0): this {
    return this.op(...simd(0x09), ...memarg(2, offset));
  }
  v128Store(offset = 0): this {
    return this.op(...simd(0x0b), ...memarg(4, offset));
  }
  f32x4Add(): this {
    return this.op(...simd(0xe4));
  }
  f32x4Mul(): this {
    return this.op(...simd(0xe6));
  }
  /** a · b + c with one rounding where the CPU has FMA (relaxed SIMD: the engine picks, the same way on every call). */
  f32x4RelaxedMadd(): this {
    return this.op(...simd(0x105));
  }

  /** A loop whose body branches back with `continueIf()` (br_if to the loop's start). */
  loop(body: (f: this) => void): this {
    this.op(0x03, 0x40);
    this.depth++;
    body(this);
    this.depth--;
    return this.op(0x0b);
  }
  /** Inside `loop`'s body (not nested in another block): branch back to the loop's start if the i32 on the stack is non-zero. */
  continueIf(): this {
    return this.op(0x0d, 0);
  }
  /** Runs `then` if the i32 on the stack is non-zero. */
  ifThen(then: (f: this) => void): this {
    this.op(0x04, 0x40);
    this.depth++;
    then(this);
    this.depth--;
    return this.op(0x0b);
  }

  /** The function's code entry (locals and body). */
  encode(): number[] {
    if (this.depth !== 0) throw new Error('wasm assembler: unbalanced blocks');
    const groups = this.locals.map((l) => [...uleb(1), l.type]).flat();
    return sized([...uleb(this.locals.length), ...groups, ...this.code, 0x0b]);
  }
}

export interface MemoryImport {
  /** Shared (a threaded build's memory, usable from workers) or not; must match the memory passed at instantiation. */
  shared: boolean;
  /** Shared memory must declare a maximum (64 KiB pages); the imported memory's own maximum must not exceed it. */
  maximumPages?: number;
}

/**
 * A module that imports its memory as env.memory and exports the given functions (each with no results). The
 * functions may not call each other.
 */
export function assembleModule(memory: MemoryImport, functions: FunctionBuilder[]): Uint8Array<ArrayBuffer> {
  const signatures: string[] = [];
  const typeOf = functions.map((f) => {
    const key = f.params.map((p) => p.type).join(',');
    let i = signatures.indexOf(key);
    if (i < 0) i = signatures.push(key) - 1;
    return i;
  });
  const types = signatures.map((key) => {
    const params = key === '' ? [] : key.split(',').map(Number);
    return [0x60, ...sized(params), 0];
  });
  // Limits: minimum 0 pages, and a maximum where given (required for shared memory: flag 0x03).
  const max = memory.maximumPages;
  if (memory.shared && max == null) throw new Error('wasm assembler: a shared memory import needs maximumPages');
  const limits = max == null ? [0x00, 0] : [memory.shared ? 0x03 : 0x01, 0, ...uleb(max)];
  const section = (id: number, entries: number[][]): number[] => [id, ...sized([...uleb(entries.length), ...entries.flat()])];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(2, [[...name('env'), ...name('memory'), 0x02, ...limits]]),
    ...section(3, typeOf.map((t) => uleb(t))),
    ...section(7, functions.map((f, i) => [...name(f.exportName), 0x00, ...uleb(i)])),
    ...section(10, functions.map((f) => f.encode())),
  ];
  return new Uint8Array(bytes);
}
