import * as tf from '@tensorflow/tfjs-core';

type Info = tf.TensorInfo;
type Attrs = tf.NamedAttrMap;

/** A backend whose tensors live in one heap that JavaScript can view in place (wasm). */
export interface HeapBackend {
  typedArrayFromHeap(info: Info): Float32Array;
}

export function heapBackend(backend: tf.KernelBackend): HeapBackend | null {
  const b = backend as unknown as Partial<HeapBackend>;
  return typeof b.typedArrayFromHeap === 'function' ? (b as HeapBackend) : null;
}

/**
 * Runs registered kernels of one backend directly on TensorInfos, below the engine. Composite kernels use it so their
 * intermediates never touch the gradient tape, the profiler or the engine's tensor count; every intermediate it makes is
 * released by `dispose()` except the ones handed out with `keep()`.
 */
export class KernelRunner {
  private readonly owned: Info[] = [];

  constructor(
    readonly backend: tf.KernelBackend,
    readonly backendName: string,
  ) {}

  /** `inputs` is an array only for kernels that take a list (Concat). */
  run(kernelName: string, inputs: Record<string, Info> | Info[], attrs: Attrs = {}): Info {
    const config = tf.getKernel(kernelName, this.backendName);
    if (config == null) throw new Error(`Gantry engine: kernel ${kernelName} is not registered for ${this.backendName}`);
    const out = config.kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, backend: this.backend, attrs });
    if (Array.isArray(out)) throw new Error(`Gantry engine: kernel ${kernelName} returned several outputs`);
    this.owned.push(out);
    return out;
  }

  /** Runs a kernel function that is not (or no longer) in the registry, e.g. the stock kernel a wrapper replaced. */
  runFunc(kernelFunc: tf.KernelFunc, inputs: Record<string, Info>, attrs: Attrs = {}): Info {
    const out = kernelFunc({ inputs, backend: this.backend, attrs });
    if (Array.isArray(out)) throw new Error('Gantry engine: wrapped kernel returned several outputs');
    this.owned.push(out);
    return out;
  }

  reshape(x: Info, shape: number[]): Info {
    if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: Info, perm: number[]): Info {
    if (perm.every((p, i) => p === i)) return x;
    return this.run('Transpose', { x }, { perm });
  }

  slice(x: Info, begin: number[], size: number[]): Info {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  concat(xs: Info[], axis: number): Info {
    if (xs.length === 1) return xs[0];
    return this.run('Concat', xs, { axis });
  }

  /** A new float32 tensor holding `values` (for small operands prepared in JS, such as re-ordered filter taps). */
  fromValues(values: Float32Array, shape: number[]): Info {
    const info: Info = { dataId: this.backend.write(values, shape, 'float32'), shape, dtype: 'float32' };
    this.owned.push(info);
    return info;
  }

  /** A new float32 tensor whose values the caller writes (on wasm: uninitialised heap memory). */
  empty(shape: number[]): Info {
    const info: Info = { dataId: this.backend.write(null as unknown as Float32Array, shape, 'float32'), shape, dtype: 'float32' };
    this.owned.push(info);
    return info;
  }

  /**
   * A new zero-filled float32 tensor that `fill` writes, reading its inputs through `read`. On wasm both are views of
   * the heap (no copies in or out); `fill` must not run kernels or allocate, which could move the heap under them.
   * Elsewhere they are arrays, copied once.
   */
  produce(shape: number[], fill: (out: Float32Array, read: (x: Info) => Float32Array) => void): Info {
    const heap = heapBackend(this.backend);
    if (heap == null) {
      const out = new Float32Array(shape.reduce((p, d) => p * d, 1));
      fill(out, (x) => this.values(x));
      return this.fromValues(out, shape);
    }
    const info = this.empty(shape);
    const out = heap.typedArrayFromHeap(info);
    out.fill(0);
    fill(out, (x) => heap.typedArrayFromHeap(x));
    return info;
  }

  values(x: Info): Float32Array {
    return this.backend.readSync(x.dataId) as Float32Array;
  }

  zeros(shape: number[]): Info {
    return this.run('Fill', {}, { shape, value: 0, dtype: 'float32' });
  }

  conv2d(x: Info, filter: Info, pads: [number, number, number, number], dilations: [number, number] = [1, 1]): Info {
    const [top, bottom, left, right] = pads;
    return this.run(
      'Conv2D',
      { x, filter },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations,
      },
    );
  }

  owns(x: Info): boolean {
    return this.owned.includes(x);
  }

  /** Hands `x` to the caller: `dispose()` will not release it. */
  keep(x: Info): Info {
    for (let i = this.owned.length - 1; i >= 0; i--) if (this.owned[i] === x) this.owned.splice(i, 1);
    return x;
  }

  dispose(): void {
    for (const info of this.owned) this.backend.disposeData(info.dataId);
    this.owned.length = 0;
  }
}

/** Runs `body` with a fresh runner and releases every intermediate except the returned TensorInfo. */
export function withRunner(
  backend: tf.KernelBackend,
  backendName: string,
  body: (r: KernelRunner) => Info,
): Info {
  const runner = new KernelRunner(backend, backendName);
  try {
    let out = body(runner);
    // A kernel must return fresh data: an input passed through would be owned twice.
    if (!runner.owns(out)) out = runner.run('Identity', { x: out });
    return runner.keep(out);
  } finally {
    runner.dispose();
  }
}
