import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeAttr, NativeBackend, OutputMetadata, TfjsNodeBinding } from './binding.js';
import { createRequire } from 'node:module';
import { nativePackageDir } from './load.js';
import { captureState } from './capture-state.js';

/**
 * Training steps as TensorFlow graphs on the tensorflow backend: a step's eager ops are recorded once, then later
 * steps run the same JavaScript with every TensorFlow op deferred (the addon is not called; tfjs gets placeholder
 * ids with the recorded shapes) and the whole step runs as one graph in a TensorFlow session when the step ends or
 * when JavaScript reads a value. What that saves is TensorFlow's eager dispatch per op, and it lets TensorFlow's
 * graph optimizer and inter-op scheduler see the whole step. tfjs's own JavaScript still runs every step.
 *
 * A replayed step must issue the recorded ops in the recorded order with the same attributes and the same wiring;
 * the first op that differs (an evaluation step, a schedule switching a term on) ends the deferred part there (it
 * runs as a graph) and the rest of that step runs eagerly; the next step is recorded anew.
 */

/** Where an op input came from in the recorded step: another op's output, or a tensor from outside the step. */
type Source = { op: number; index: number } | { external: number };

interface RecordedOp {
  name: string;
  attrs: NativeAttr[];
  inputs: Source[];
  outputs: { shape: number[]; dtype: number }[];
}

interface Recording {
  ops: RecordedOp[];
  /** Op counts at which the recorded step read one of its own results. */
  cuts: Set<number>;
  /** dtype and shape of each external input slot. */
  externals: { shape: number[]; dtype: number }[];
}

interface TensorMeta {
  shape: number[];
  dtype: number;
}

interface TensorData {
  id: number;
}

type Mode = 'eager' | 'record' | 'replay';

const UNKNOWN_SHAPE: number[] = [];
const TF_DTYPES: Record<string, number> = { float32: 1, int32: 3, bool: 10 };

/** Addon ids of deferred outputs: far above the addon's own counter, which starts at 0. */
const FAKE_BASE = 1 << 30;

/** Ops that touch TensorFlow state outside the step's tensors: a graph session cannot see the eager context's. */
const STATEFUL = new Set(['AssignVariableOp', 'ReadVariableOp', 'ResourceApplyAdam', 'VarHandleOp', 'DestroyResourceOp']);

export interface StepCaptureStats {
  /** Steps run eagerly while recording. */
  recorded: number;
  /** Steps whose ops all ran as graphs. */
  replayed: number;
  /** Steps that stopped matching the recording part way (the rest ran eagerly). */
  diverged: number;
  /** Distinct graphs built (one per op range). */
  graphs: number;
  /** Graph runs (one per step, more when a step reads values part way). */
  runs: number;
  /** Why capturing stopped for good, if it did. */
  off?: string;
}

export interface StepCapture {
  /** Runs one training step: eagerly for the first `warmup` steps, recorded the next, as graphs after that. */
  run<T>(step: () => T | Promise<T>): Promise<T>;
  readonly stats: StepCaptureStats;
  /** TensorFlow tensors made since the capture began (or used by a recorded step) and not yet deleted. */
  readonly nativeTensors: number;
  /** Unwraps the backend and frees the sessions. */
  dispose(): void;
}

export interface StepCaptureOptions {
  /** Eager steps before the one recorded (optimizer slots and caches are created in the first steps). Default 2. */
  warmup?: number;
  /** Where the one line goes when capturing turns itself off. Default console.warn. */
  warn?: (line: string) => void;
}

interface ProtoModule {
  [name: string]: any;
}

function loadProtos(): ProtoModule {
  // tfjs-node reads SavedModels with these generated protobuf classes; the same classes write ours.
  const pkgDir = nativePackageDir();
  if (pkgDir == null) throw new Error('step capture: the tensorflow backend was not loaded by Gantry');
  return createRequire(join(pkgDir, 'package.json'))('./dist/proto/api_pb.js') as ProtoModule;
}

export function captureSteps(options: StepCaptureOptions = {}): StepCapture {
  if (tf.getBackend() !== 'tensorflow') throw new Error(`step capture needs the tensorflow backend, not ${tf.getBackend()}`);
  const warmup = options.warmup ?? 2;
  const backend = tf.backend() as NativeBackend & { tensorMap: { get(dataId: object): TensorData } };
  const binding = backend.binding;
  const pb = loadProtos();
  const dir = mkdtempSync(join(tmpdir(), 'gantry-graph-'));
  const stats: StepCaptureStats = { recorded: 0, replayed: 0, diverged: 0, graphs: 0, runs: 0 };

  let mode: Mode = 'eager';
  let stepsSeen = 0;
  let recording: Recording | undefined;

  // Record state: what each addon id is (an op output of this step, or an external slot) and external metadata.
  let sourceOfId = new Map<number, Source>();
  const metaOfId = new Map<number, TensorMeta>();

  // Replay state.
  let cursor = 0;
  let segmentStart = 0;
  let nextFake = FAKE_BASE;
  /** Pending fake id → the recorded output it stands for. */
  let pendingSource = new Map<number, { op: number; index: number }>();
  /** Fake ids handed out for each recorded op's outputs this step. */
  let fakeOf: number[][] = [];
  /** Real id of recorded outputs already run this step (by op, index). */
  let realOf: number[][] = [];
  /** External slot → real id, this step. */
  let externalIds: number[] = [];
  /** Deferred outputs whose tensors tfjs still holds: fake id → its TensorData. */
  let liveData = new Map<number, TensorData>();
  /** Pending fakes disposed by tfjs before their graph ran. */
  let deadFakes = new Set<number>();
  /** Real ids tfjs disposed while a graph that may read them was pending. */
  let deferredDeletes: number[] = [];
  /** Fake ids held outside tfjs's tensor map (e.g. kernels' caches) that ran already: fake → real. */
  const translated = new Map<number, number>();
  const sessions = new Map<string, { id: number; placeholders: string[]; inputs: Source[] }>();

  const real = (id: number) => (id >= FAKE_BASE ? translated.get(id) ?? id : id);

  function attrValue(attr: NativeAttr): unknown {
    const value = new pb.AttrValue();
    const v = attr.value;
    const list = Array.isArray(v) ? new pb.AttrValue.ListValue() : undefined;
    switch (attr.type) {
      case binding.TF_ATTR_STRING:
        value.setS(new TextEncoder().encode(String(v)));
        break;
      case binding.TF_ATTR_INT:
        if (list) {
          list.setIList(v as number[]);
          value.setList(list);
        } else value.setI(v as number);
        break;
      case binding.TF_ATTR_FLOAT:
        if (list) {
          list.setFList(v as number[]);
          value.setList(list);
        } else value.setF(v as number);
        break;
      case binding.TF_ATTR_BOOL:
        if (list) {
          list.setBList(v as boolean[]);
          value.setList(list);
        } else value.setB(v as boolean);
        break;
      case binding.TF_ATTR_TYPE:
        value.setType(v as number);
        break;
      case binding.TF_ATTR_SHAPE:
        value.setShape(shapeProto(v as number[]));
        break;
      default:
        throw new Error(`step capture: attribute ${attr.name} has an unknown type code ${attr.type}`);
    }
    return value;
  }

  function shapeProto(shape: number[]): unknown {
    const proto = new pb.TensorShape();
    for (const size of shape) {
      const dim = new pb.TensorShape.Dim();
      dim.setSize(size);
      proto.addDim(dim);
    }
    return proto;
  }

  const sourceKey = (s: Source) => ('external' in s ? `x${s.external}` : `o${s.op}_${s.index}`);

  /** The graph of recorded ops [from, to): inputs made before `from` or outside the step become placeholders. */
  function sessionFor(from: number, to: number) {
    const key = `${from}:${to}`;
    const cached = sessions.get(key);
    if (cached) return cached;
    const rec = recording!;
    const graph = new pb.GraphDef();
    const placeholders: string[] = [];
    const inputs: Source[] = [];
    const seen = new Set<string>();
    const addNode = (name: string, op: string, nodeInputs: string[], attrs: [string, unknown][]) => {
      const node = new pb.NodeDef();
      node.setName(name);
      node.setOp(op);
      node.setInputList(nodeInputs);
      const map = node.getAttrMap();
      for (const [attrName, value] of attrs) map.set(attrName, value);
      graph.addNode(node);
    };
    for (let k = from; k < to; k++) {
      const op = rec.ops[k]!;
      const names = op.inputs.map((source) => {
        if (!('external' in source) && source.op >= from) return `n${source.op}:${source.index}`;
        const name = sourceKey(source);
        if (!seen.has(name)) {
          seen.add(name);
          const meta = 'external' in source ? rec.externals[source.external]! : rec.ops[source.op]!.outputs[source.index]!;
          const dtype = new pb.AttrValue();
          dtype.setType(meta.dtype);
          const attrs: [string, unknown][] = [['dtype', dtype]];
          if (meta.shape !== UNKNOWN_SHAPE) {
            const shape = new pb.AttrValue();
            shape.setShape(shapeProto(meta.shape));
            attrs.push(['shape', shape]);
          }
          addNode(name, 'Placeholder', [], attrs);
          placeholders.push(`${name}:0`);
          inputs.push(source);
        }
        return name;
      });
      addNode(
        `n${k}`,
        op.name,
        names,
        op.attrs.map((attr) => [attr.name, attrValue(attr)]),
      );
    }
    const meta = new pb.MetaGraphDef();
    const info = new pb.MetaGraphDef.MetaInfoDef();
    info.setTagsList(['serve']);
    meta.setMetaInfoDef(info);
    meta.setGraphDef(graph);
    const saved = new pb.SavedModel();
    saved.setSavedModelSchemaVersion(1);
    saved.addMetaGraphs(meta);
    const modelDir = join(dir, `g${stats.graphs}`);
    mkdirSync(modelDir, { recursive: true });
    writeFileSync(join(modelDir, 'saved_model.pb'), saved.serializeBinary() as Uint8Array);
    const id = (binding as unknown as { loadSavedModel(dir: string, tags: string): number }).loadSavedModel(modelDir, 'serve');
    const session = { id, placeholders, inputs };
    sessions.set(key, session);
    stats.graphs++;
    return session;
  }

  /** Runs the deferred ops [segmentStart, cursor) as one graph and gives their live outputs real ids. */
  function flush() {
    if (cursor === segmentStart) return;
    const session = sessionFor(segmentStart, cursor);
    const feeds = session.inputs.map((source) => {
      if ('external' in source) return externalIds[source.external]!;
      return realOf[source.op]![source.index]!;
    });
    const fetches: string[] = [];
    const fetched: { op: number; index: number; fake: number }[] = [];
    for (let k = segmentStart; k < cursor; k++) {
      const fakes = fakeOf[k]!;
      for (let i = 0; i < fakes.length; i++) {
        const fake = fakes[i]!;
        if (deadFakes.has(fake)) continue;
        fetches.push(`n${k}:${i}`);
        fetched.push({ op: k, index: i, fake });
      }
    }
    const outputs: OutputMetadata[] =
      fetches.length === 0
        ? []
        : (binding as unknown as { runSavedModel(id: number, ids: number[], inputs: string, outputs: string): OutputMetadata[] }).runSavedModel(
            session.id,
            feeds,
            session.placeholders.join(','),
            fetches.join(','),
          );
    stats.runs++;
    outputs.forEach((meta, j) => {
      const { op, index, fake } = fetched[j]!;
      (realOf[op] ??= [])[index] = meta.id;
      metaOfId.set(meta.id, { shape: meta.shape, dtype: meta.dtype });
      translated.set(fake, meta.id);
      const data = liveData.get(fake);
      if (data) {
        data.id = meta.id;
        liveData.delete(fake);
      }
      pendingSource.delete(fake);
    });
    for (const id of deferredDeletes) deleteNow(id);
    deferredDeletes = [];
    segmentStart = cursor;
  }

  function diverge(): void {
    flush();
    stats.diverged++;
    mode = 'eager';
    recording = undefined; // the next step is recorded anew
  }

  function sameAttrs(a: NativeAttr[], b: NativeAttr[]): boolean {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x.name !== y.name || x.type !== y.type) return false;
      if (Array.isArray(x.value)) {
        if (!Array.isArray(y.value) || x.value.length !== y.value.length) return false;
        for (let j = 0; j < x.value.length; j++) if (x.value[j] !== y.value[j]) return false;
      } else if (x.value !== y.value) return false;
    }
    return true;
  }

  const wrapped: Partial<TfjsNodeBinding> & Record<string, unknown> = {
    executeOp(name: string, attrs: NativeAttr[], inputIds: number[], outputs: number): OutputMetadata[] {
      if (mode === 'replay') {
        const rec = recording!;
        const op = rec.ops[cursor];
        let matches = op != null && op.name === name && op.outputs.length === outputs && op.inputs.length === inputIds.length && sameAttrs(op.attrs, attrs);
        for (let i = 0; matches && i < inputIds.length; i++) {
          const id = inputIds[i]!;
          const expected = op!.inputs[i]!;
          const pending = pendingSource.get(id);
          if (pending) {
            matches = !('external' in expected) && expected.op === pending.op && expected.index === pending.index;
          } else if ('external' in expected) {
            const realId = real(id);
            const bound = externalIds[expected.external];
            if (bound === undefined) externalIds[expected.external] = realId;
            else matches = bound === realId;
          } else {
            matches = expected.op < segmentStart && realOf[expected.op]?.[expected.index] === real(id);
          }
        }
        if (matches) {
          const k = cursor++;
          const fakes: number[] = [];
          const result = op!.outputs.map((out, index) => {
            const fake = nextFake++;
            if (nextFake >= 0x7fffffff) nextFake = FAKE_BASE;
            fakes.push(fake);
            pendingSource.set(fake, { op: k, index });
            return { id: fake, shape: out.shape, dtype: out.dtype };
          });
          fakeOf[k] = fakes;
          return result;
        }
        diverge();
        return binding.executeOp(name, attrs, inputIds.map(real), outputs);
      }
      inputIds = inputIds.map(real);
      const result = binding.executeOp(name, attrs, inputIds, outputs);
      for (const out of result) metaOfId.set(out.id, { shape: out.shape, dtype: out.dtype });
      if (mode === 'record' && STATEFUL.has(name)) turnOff(`${name} keeps state in TensorFlow, which a graph cannot share`);
      if (mode === 'record') {
        const k = recording!.ops.length;
        const inputs = inputIds.map((id): Source => {
          const known = sourceOfId.get(id);
          if (known) return known;
          const meta = metaOfId.get(id) ?? metaFromValues(id);
          const slot = recording!.externals.length;
          recording!.externals.push(meta);
          const source = { external: slot };
          sourceOfId.set(id, source);
          return source;
        });
        recording!.ops.push({ name, attrs: attrs.map((a) => ({ ...a, value: Array.isArray(a.value) ? [...a.value] : a.value })), inputs, outputs: result.map((o) => ({ shape: o.shape, dtype: o.dtype })) });
        result.forEach((out, index) => sourceOfId.set(out.id, { op: k, index }));
      }
      return result;
    },
    createTensor(shape: number[], dtype: number, values: Float32Array | Int32Array): number {
      const id = binding.createTensor(shape, dtype, values);
      metaOfId.set(id, { shape, dtype });
      return id;
    },
    deleteTensor(id: number): void {
      if (id >= FAKE_BASE) {
        const realId = translated.get(id);
        if (realId !== undefined) {
          translated.delete(id);
          deleteReal(realId);
        } else if (pendingSource.has(id)) {
          deadFakes.add(id);
          liveData.delete(id);
        }
        return;
      }
      deleteReal(id);
    },
    tensorDataSync(id: number): unknown {
      if (pendingSource.has(id)) flush();
      // A read of this step's own result in the recorded step: replays run the ops before it as a graph of their own.
      if (mode === 'record' && sourceOfId.get(id) && !('external' in sourceOfId.get(id)!)) recording!.cuts.add(recording!.ops.length);
      return (binding as unknown as { tensorDataSync(id: number): unknown }).tensorDataSync(real(id));
    },
  };

  /**
   * dtype of a tensor made before the capture began that only the addon knows (kernels' cached constants): read once
   * while recording. Its shape stays unknown to the graph, which TensorFlow infers.
   */
  function metaFromValues(id: number): TensorMeta {
    const values = (binding as unknown as { tensorDataSync(id: number): ArrayBufferView }).tensorDataSync(id);
    const dtype = values instanceof Float32Array ? binding.TF_FLOAT : values instanceof Int32Array ? binding.TF_INT32 : values instanceof Uint8Array ? binding.TF_BOOL : undefined;
    if (dtype === undefined) throw new Error(`step capture: tensor ${id} has a dtype a graph input cannot take here`);
    return { dtype, shape: UNKNOWN_SHAPE };
  }

  function deleteReal(id: number) {
    if (mode === 'replay') deferredDeletes.push(id);
    else deleteNow(id);
  }

  function deleteNow(id: number) {
    metaOfId.delete(id);
    binding.deleteTensor(id);
  }

  captureState.active = true;
  const proxy = Object.create(binding, Object.fromEntries(Object.entries(wrapped).map(([k, value]) => [k, { value }])));
  backend.binding = proxy as TfjsNodeBinding;
  const getInputTensorIds = backend.getInputTensorIds;
  backend.getInputTensorIds = function (tensors: tf.TensorInfo[]) {
    const ids = getInputTensorIds.call(this, tensors);
    // Tensors tfjs made before the capture began: their metadata, for graph inputs.
    if (mode === 'record') {
      ids.forEach((id, i) => {
        if (!metaOfId.has(id) && TF_DTYPES[tensors[i]!.dtype] !== undefined) metaOfId.set(id, { shape: tensors[i]!.shape, dtype: TF_DTYPES[tensors[i]!.dtype]! });
      });
    }
    return ids;
  };
  const createOutputTensor = backend.createOutputTensor;
  backend.createOutputTensor = function (metadata: OutputMetadata) {
    const tensor = createOutputTensor.call(this, metadata);
    if (metadata.id >= FAKE_BASE) liveData.set(metadata.id, backend.tensorMap.get(tensor.dataId));
    return tensor;
  };

  /**
   * Stops capturing for good (an op a graph cannot hold, a graph TensorFlow refuses): the rest of this step and every
   * later one run eagerly, as without a capture. Said once.
   */
  function turnOff(reason: string): void {
    stats.off = reason;
    mode = 'eager';
    recording = undefined;
    freeSessions();
    (options.warn ?? console.warn)(`graph steps off (training continues with eager steps): ${reason}`);
  }

  /** Builds the recorded step's graphs now (one per stretch between reads), so a graph TensorFlow refuses turns capture off before any step depends on it. */
  function buildSegments(): void {
    const rec = recording!;
    const bounds = [0, ...[...rec.cuts].filter((c) => c > 0 && c < rec.ops.length).sort((a, b) => a - b), rec.ops.length];
    try {
      for (let i = 1; i < bounds.length; i++) if (bounds[i]! > bounds[i - 1]!) sessionFor(bounds[i - 1]!, bounds[i]!);
    } catch (error) {
      turnOff(String((error as Error).message).split('\n')[0]!);
    }
  }

  /** The graphs of the previous recording. */
  function freeSessions() {
    for (const session of sessions.values()) {
      (binding as unknown as { deleteSavedModel(id: number): void }).deleteSavedModel(session.id);
    }
    sessions.clear();
  }

  function beginReplay() {
    mode = 'replay';
    cursor = 0;
    segmentStart = 0;
    pendingSource = new Map();
    fakeOf = [];
    realOf = [];
    externalIds = [];
    liveData = new Map();
    deadFakes = new Set();
  }

  return {
    stats,
    get nativeTensors() {
      return metaOfId.size;
    },
    async run<T>(step: () => T | Promise<T>): Promise<T> {
      if (stepsSeen++ < warmup || stats.off !== undefined) {
        mode = 'eager';
        return step();
      }
      if (recording === undefined) {
        freeSessions();
        mode = 'record';
        recording = { ops: [], externals: [], cuts: new Set() };
        sourceOfId = new Map();
        try {
          const result = await step();
          if (mode === 'record') {
            stats.recorded++;
            buildSegments();
          }
          return result;
        } finally {
          mode = 'eager';
          sourceOfId = new Map();
        }
      }
      beginReplay();
      try {
        const result = await step();
        if (mode === 'replay') {
          flush();
          stats.replayed++;
        }
        return result;
      } finally {
        if (mode === 'replay' && cursor !== segmentStart) flush();
        mode = 'eager';
        for (const id of deferredDeletes) deleteNow(id);
        deferredDeletes = [];
      }
    },
    dispose() {
      captureState.active = false;
      backend.binding = binding;
      backend.createOutputTensor = createOutputTensor;
      backend.getInputTensorIds = getInputTensorIds;
      freeSessions();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

