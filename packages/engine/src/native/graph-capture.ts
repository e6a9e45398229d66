import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeDtype, type NativeAttr, type NativeBackend, type NativeTensorData, type OutputMetadata, type TfjsNodeBinding } from './binding.js';
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
 * The recorded step's results come from its graph too, so every step from the recorded one on computes the same way
 * (and a resumed run, which records its first step, what the uninterrupted one replays). A replayed step must issue
 * the recorded ops in the recorded order with the same attributes and the same wiring; the first op that differs (an
 * evaluation step, a schedule switching a term on) ends the deferred part there (it runs as a graph), the rest of
 * that step is recorded and run as a graph of its own, and the next step is recorded anew.
 */

/** Where an op input came from in the recorded step: another op's output, or a tensor from outside the step. */
type Source = { op: number; index: number } | { external: number };

interface TensorMeta {
  shape: number[];
  dtype: number;
}

interface RecordedOp {
  name: string;
  attrs: NativeAttr[];
  /** Type attributes eager execution inferred from the inputs, written out for the graph. */
  inferred?: NativeAttr[];
  inputs: Source[];
  /** `inputs` as numbers, for the replay's per-op check: `outputKey` of an op output, −1 − slot of an external. */
  inputKeys: number[];
  outputs: TensorMeta[];
  /** The graph's name of each output (`n<op>:<index>`), to fetch it. */
  fetchNames: string[];
}

interface Recording {
  ops: RecordedOp[];
  /** dtype and shape of each external input slot. */
  externals: TensorMeta[];
}

/**
 * A small tensor the recorded step uploaded from JavaScript (tfjs uploads its constants, such as the 1 of a
 * gradient or a learning rate, at every use). A replayed step's upload in the same place, with the same dtype, shape
 * and values, gets this tensor back instead of a new one while no tfjs tensor holds it: one upload and one delete
 * fewer, the same values.
 */
interface Upload {
  id: number;
  dtype: number;
  shape: number[];
  values: Float32Array | Int32Array;
  /** Whether a tfjs tensor holds it now (at most one does). */
  held: boolean;
  /** Kept for the current recording; once not, deleted when its holder lets go. */
  kept: boolean;
}

interface Session {
  id: number;
  /** `name:0` of each placeholder, in feed order. */
  placeholders: string[];
  inputs: Source[];
}

type Mode = 'eager' | 'record' | 'replay';

const UNKNOWN_SHAPE: number[] = [];

const MAX_DIVERGED_IN_A_ROW = 3;

/** Recorded op output `index` of op `op` as one number (ops have far fewer outputs). */
const OUTPUTS_PER_OP = 65536;
const outputKey = (op: number, index: number) => op * OUTPUTS_PER_OP + index;

/** Addon ids of deferred outputs: far above the addon's own counter, which starts at 0. */
const FAKE_BASE = 1 << 30;

/** Uploads of at most this many values are kept for the replayed steps (see `Upload`). */
const MAX_KEPT_UPLOAD = 16;

/** Ops that touch TensorFlow state outside the step's tensors: a graph session cannot see the eager context's. */
const STATEFUL = new Set(['AssignVariableOp', 'ReadVariableOp', 'ResourceApplyAdam', 'VarHandleOp', 'DestroyResourceOp']);

export interface StepCaptureStats {
  /** Steps recorded (run eagerly for the shapes, their results then computed by their graphs). */
  recorded: number;
  /** Steps whose ops all ran as graphs of the recording. */
  replayed: number;
  /** Steps that stopped matching the recording part way (the rest recorded and run as a graph of its own). */
  diverged: number;
  /** Distinct graphs built (one per op range). */
  graphs: number;
  /** Graph runs (one per step, more when a step reads values part way). */
  runs: number;
  /** Why capturing stopped for good, if it did. */
  off?: string;
}

export interface StepCapture {
  /**
   * Runs training step `stepNumber` (the Trainer passes it; default: counted from 1 by this capture): eagerly up to
   * step `warmup`, then recorded, then replayed as graphs.
   */
  run<T>(step: () => T | Promise<T>, stepNumber?: number): Promise<T>;
  readonly stats: StepCaptureStats;
  /** TensorFlow tensors made since the capture began (or used by a recorded step) and not yet deleted. */
  readonly nativeTensors: number;
  /** Ids of graph outputs that something may still hold by their pending id (flat from step to step). */
  readonly translations: number;
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
  const backend = tf.backend() as NativeBackend;
  const binding = backend.binding;
  const pb = loadProtos();
  /** Where the SavedModels go: made with the first graph (a failure there turns capturing off, like any refused graph). */
  let dir: string | undefined;
  const stats: StepCaptureStats = { recorded: 0, replayed: 0, diverged: 0, graphs: 0, runs: 0 };

  let mode: Mode = 'eager';
  /** The recording holds the tail of a step that stopped matching: not replayable. */
  let partial = false;
  /** Steps in a row that stopped matching their recording (a replayed step resets it). */
  let divergedInARow = 0;
  let stepsRun = 0;
  let recording: Recording | undefined;
  const sessions = new Map<string, Session>();

  /** dtype and shape of every addon tensor made since the capture began (and of older ones a recorded step used). */
  const metaOfId = new Map<number, TensorMeta>();
  /** Ids that stood for an op output whose graph has run (kernels may still hold them): → the graph's output. */
  const translated = new Map<number, number>();
  /** The reverse of `translated`, to forget a translation when its tensor is deleted. */
  const translatedFrom = new Map<number, number>();
  const real = (id: number) => translated.get(id) ?? id;

  // Per step, while recording or replaying. An op output is "pending" until the graph of its stretch has run: in a
  // replayed step its id is a placeholder (FAKE_BASE and up); in the recorded step it is the eager result, which
  // the graph's output then replaces, so recorded steps compute what replayed ones do.
  /** While recording: the recorded output or external slot each id of this step stands for. */
  let sourceOfId = new Map<number, Source>();
  let cursor = 0;
  let segmentStart = 0;
  let nextFake = FAKE_BASE;
  /** Pending id → `outputKey` of the recorded output it stands for. */
  let pendingSource = new Map<number, number>();
  /** Pending ids of each recorded op's outputs. */
  let pendingOf: number[][] = [];
  /** Graph output ids of recorded outputs already run this step. */
  let realOf: number[][] = [];
  /** External slot → addon id, this step. */
  let externalIds: number[] = [];
  /** Pending ids that a tfjs tensor holds → its TensorData (its id is replaced when the graph has run). */
  let liveData = new Map<number, NativeTensorData>();
  let deadIds = new Set<number>();
  /** Addon tensors tfjs disposed while a graph that may read them was pending. */
  let deferredDeletes: number[] = [];
  /** The recorded step's small uploads in upload order, and each kept upload by id. */
  let uploads: Upload[] = [];
  const uploadOfId = new Map<number, Upload>();
  /** Small uploads so far this step. */
  let uploadCursor = 0;

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
  /** dtype and shape of a recorded op input. */
  const metaOf = (rec: Recording, s: Source): TensorMeta => ('external' in s ? rec.externals[s.external]! : rec.ops[s.op]!.outputs[s.index]!);

  /** The graph of recorded ops [from, to): inputs made before `from` or outside the step become placeholders. */
  function sessionFor(from: number, to: number): Session {
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
          const meta = metaOf(rec, source);
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
        [...op.attrs, ...(op.inferred ?? [])].map((attr) => [attr.name, attrValue(attr)]),
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
    dir ??= mkdtempSync(join(tmpdir(), 'gantry-graph-'));
    const modelDir = join(dir, `g${stats.graphs}`);
    mkdirSync(modelDir, { recursive: true });
    writeFileSync(join(modelDir, 'saved_model.pb'), saved.serializeBinary() as Uint8Array);
    let id: number;
    try {
      id = binding.loadSavedModel(modelDir, 'serve');
    } catch (error) {
      // Eager ops infer type attributes from their inputs; a graph node needs them written. tfjs-node leaves some out
      // (e.g. the T of its Transpose): take the first input's dtype, as eager inference would, and build again.
      const missing = /No attr named '(\w+)' in NodeDef:[\s\S]*?\{\{node n(\d+)\}\}/.exec(String((error as Error).message));
      const k = missing ? Number(missing[2]) : -1;
      const op = rec.ops[k];
      if (!missing || !op || op.inputs.length === 0 || [...op.attrs, ...(op.inferred ?? [])].some((a) => a.name === missing[1])) throw error;
      (op.inferred ??= []).push({ name: missing[1]!, type: binding.TF_ATTR_TYPE, value: metaOf(rec, op.inputs[0]!).dtype });
      return sessionFor(from, to);
    }
    const session = { id, placeholders, inputs };
    sessions.set(key, session);
    stats.graphs++;
    return session;
  }

  /**
   * Runs the recorded ops [segmentStart, cursor) as one graph; their outputs that tfjs still holds take the graph's
   * results (in the recorded step the eager results are freed).
   */
  function flush() {
    if (cursor === segmentStart) return;
    let session: Session;
    try {
      session = sessionFor(segmentStart, cursor);
    } catch (error) {
      // Only a recorded step builds graphs: its eager results stand.
      turnOff(String((error as Error).message).split('\n')[0]!);
      return;
    }
    const feeds = session.inputs.map((source) => ('external' in source ? externalIds[source.external]! : realOf[source.op]![source.index]!));
    const fetches: string[] = [];
    const fetchedOps: number[] = [];
    const fetchedIndices: number[] = [];
    const fetchedPending: number[] = [];
    const ops = recording!.ops;
    for (let k = segmentStart; k < cursor; k++) {
      const ids = pendingOf[k]!;
      for (let i = 0; i < ids.length; i++) {
        if (deadIds.has(ids[i]!)) continue;
        fetches.push(ops[k]!.fetchNames[i]!);
        fetchedOps.push(k);
        fetchedIndices.push(i);
        fetchedPending.push(ids[i]!);
      }
    }
    const outputs = fetches.length === 0 ? [] : binding.runSavedModel(session.id, feeds, session.placeholders.join(','), fetches.join(','));
    stats.runs++;
    outputs.forEach((meta, j) => {
      const op = fetchedOps[j]!;
      const index = fetchedIndices[j]!;
      const pending = fetchedPending[j]!;
      (realOf[op] ??= [])[index] = meta.id;
      metaOfId.set(meta.id, { shape: meta.shape, dtype: meta.dtype });
      translated.set(pending, meta.id);
      translatedFrom.set(meta.id, pending);
      const data = liveData.get(pending);
      if (data) data.id = meta.id;
      liveData.delete(pending);
      pendingSource.delete(pending);
      if (mode === 'record') {
        sourceOfId.set(meta.id, { op, index });
        deleteNow(pending);
      }
    });
    for (const id of deferredDeletes) deleteNow(id);
    deferredDeletes = [];
    segmentStart = cursor;
  }

  /**
   * The replayed step stopped matching: what is pending runs as a graph, and the rest of the step is recorded from
   * here (so it too is computed by a graph, as a recorded step is) and dropped at the step's end: the next step is
   * recorded anew from its start.
   */
  function diverge(): void {
    flush();
    stats.diverged++;
    // Ops that change every step (a value baked into an attribute, a schedule moving each step) would rebuild graphs
    // every step, which costs more than it saves.
    if (++divergedInARow >= MAX_DIVERGED_IN_A_ROW) {
      turnOff(`the step's ops changed in ${MAX_DIVERGED_IN_A_ROW} steps in a row`);
      return;
    }
    freeSessions();
    recording = { ops: [], externals: [] };
    partial = true;
    beginStep('record');
  }

  /**
   * Stops capturing for good (an op a graph cannot hold, a graph TensorFlow refuses): the rest of this step and every
   * later one run eagerly, as without a capture. Said once.
   */
  function turnOff(reason: string): void {
    stats.off = reason;
    endStep();
    recording = undefined;
    freeSessions();
    (options.warn ?? console.warn)(`graph steps off (training continues with eager steps): ${reason}`);
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

  /** In a replayed step: whether this call is the next recorded op, wired as recorded. */
  function matchesRecording(name: string, attrs: NativeAttr[], inputIds: number[], outputs: number): boolean {
    const op = recording!.ops[cursor];
    if (op == null || op.name !== name || op.outputs.length !== outputs || op.inputs.length !== inputIds.length || !sameAttrs(op.attrs, attrs)) return false;
    for (let i = 0; i < inputIds.length; i++) {
      const id = inputIds[i]!;
      const expected = op.inputKeys[i]!;
      const pending = pendingSource.get(id);
      if (pending !== undefined) {
        if (pending !== expected) return false;
      } else if (expected < 0) {
        const slot = -1 - expected;
        const bound = externalIds[slot];
        if (bound === undefined) externalIds[slot] = real(id);
        else if (bound !== real(id)) return false;
      } else {
        const source = op.inputs[i] as { op: number; index: number };
        if (!(source.op < segmentStart && realOf[source.op]?.[source.index] === real(id))) return false;
      }
    }
    return true;
  }

  function record(name: string, attrs: NativeAttr[], inputIds: number[], result: OutputMetadata[]): void {
    const rec = recording!;
    const k = rec.ops.length;
    const inputs = inputIds.map((id): Source => {
      const known = sourceOfId.get(id);
      if (known) return known;
      const slot = rec.externals.length;
      rec.externals.push(metaOfId.get(id) ?? metaFromValues(id));
      externalIds[slot] = id;
      const source = { external: slot };
      sourceOfId.set(id, source);
      return source;
    });
    rec.ops.push({
      name,
      attrs: attrs.map((a) => ({ ...a, value: Array.isArray(a.value) ? [...a.value] : a.value })),
      inputs,
      inputKeys: inputs.map((source) => ('external' in source ? -1 - source.external : outputKey(source.op, source.index))),
      outputs: result.map((o) => ({ shape: o.shape, dtype: o.dtype })),
      fetchNames: result.map((_, index) => `n${k}:${index}`),
    });
    pendingOf[k] = result.map((out, index) => {
      sourceOfId.set(out.id, { op: k, index });
      pendingSource.set(out.id, outputKey(k, index));
      return out.id;
    });
    cursor = rec.ops.length;
  }

  const wrapped: Record<string, unknown> = {
    executeOp(name: string, attrs: NativeAttr[], inputIds: number[], outputs: number): OutputMetadata[] {
      if (mode === 'replay') {
        if (matchesRecording(name, attrs, inputIds, outputs)) {
          const k = cursor++;
          const recorded = recording!.ops[k]!.outputs;
          const ids: number[] = new Array(recorded.length);
          const result: OutputMetadata[] = new Array(recorded.length);
          for (let index = 0; index < recorded.length; index++) {
            const fake = nextFake++;
            if (nextFake >= 0x7fffffff) nextFake = FAKE_BASE;
            ids[index] = fake;
            pendingSource.set(fake, outputKey(k, index));
            result[index] = { id: fake, shape: recorded[index]!.shape, dtype: recorded[index]!.dtype };
          }
          pendingOf[k] = ids;
          return result;
        }
        diverge();
      }
      if (mode === 'record' && STATEFUL.has(name)) turnOff(`${name} keeps state in TensorFlow, which a graph cannot share`);
      inputIds = inputIds.map(real);
      const result = binding.executeOp(name, attrs, inputIds, outputs);
      for (const out of result) metaOfId.set(out.id, { shape: out.shape, dtype: out.dtype });
      if (mode === 'record') record(name, attrs, inputIds, result);
      return result;
    },
    createTensor(shape: number[], dtype: number, values: Float32Array | Int32Array): number {
      const small = mode !== 'eager' && values.length <= MAX_KEPT_UPLOAD;
      if (small && mode === 'replay') {
        const kept = uploads[uploadCursor];
        if (kept !== undefined && !kept.held && sameUpload(kept, shape, dtype, values)) {
          uploadCursor++;
          kept.held = true;
          return kept.id;
        }
      }
      if (small) uploadCursor++;
      const id = binding.createTensor(shape, dtype, values);
      metaOfId.set(id, { shape, dtype });
      if (small && mode === 'record' && !partial) {
        const upload = { id, dtype, shape: [...shape], values: values.slice(), held: true, kept: true };
        uploads.push(upload);
        uploadOfId.set(id, upload);
      }
      return id;
    },
    deleteTensor(id: number): void {
      const upload = uploadOfId.get(id);
      if (upload !== undefined) {
        upload.held = false;
        if (upload.kept) return;
        uploadOfId.delete(id);
      }
      const target = translated.get(id);
      if (target !== undefined) {
        deleteLater(target);
      } else if (pendingSource.has(id)) {
        deadIds.add(id);
        liveData.delete(id);
        if (mode === 'record') deleteLater(id);
      } else deleteLater(id);
    },
    tensorDataSync(id: number): ArrayBufferView {
      if (pendingSource.has(id)) flush();
      return binding.tensorDataSync(real(id));
    },
  };

  /**
   * dtype of a tensor made before the capture began that only the addon knows (kernels' cached constants): read once
   * while recording. Its shape stays unknown to the graph, which TensorFlow infers.
   */
  function metaFromValues(id: number): TensorMeta {
    const values = binding.tensorDataSync(id);
    const dtype =
      values instanceof Float32Array ? binding.TF_FLOAT : values instanceof Int32Array ? binding.TF_INT32 : values instanceof Uint8Array ? binding.TF_BOOL : undefined;
    if (dtype === undefined) throw new Error(`step capture: tensor ${id} has a dtype a graph input cannot take here`);
    return { dtype, shape: UNKNOWN_SHAPE };
  }

  function sameUpload(upload: Upload, shape: number[], dtype: number, values: Float32Array | Int32Array): boolean {
    if (upload.dtype !== dtype || upload.shape.length !== shape.length || upload.values.length !== values.length) return false;
    for (let i = 0; i < shape.length; i++) if (upload.shape[i] !== shape[i]) return false;
    // Object.is: -0 and NaN as the bits would compare (float32 values widen to distinct doubles exactly).
    for (let i = 0; i < values.length; i++) if (!Object.is(upload.values[i], values[i])) return false;
    return true;
  }

  /** The kept uploads of a recording that is no longer replayed: deleted now, or when their holder lets go. */
  function releaseUploads() {
    for (const upload of uploads) {
      upload.kept = false;
      if (!upload.held) {
        uploadOfId.delete(upload.id);
        deleteLater(upload.id);
      }
    }
    uploads = [];
  }

  /** While a graph is pending, anything may still be its input: freed after it ran. */
  function deleteLater(id: number) {
    if (mode === 'eager') deleteNow(id);
    else deferredDeletes.push(id);
  }

  function deleteNow(id: number) {
    metaOfId.delete(id);
    const from = translatedFrom.get(id);
    if (from !== undefined) {
      translated.delete(from);
      translatedFrom.delete(id);
    }
    binding.deleteTensor(id);
  }

  captureState.active = true;
  backend.binding = Object.create(binding, Object.fromEntries(Object.entries(wrapped).map(([k, value]) => [k, { value }]))) as TfjsNodeBinding;
  const getInputTensorIds = backend.getInputTensorIds;
  backend.getInputTensorIds = function (tensors: tf.TensorInfo[]) {
    const ids = getInputTensorIds.call(this, tensors);
    // Tensors tfjs made before the capture began: their metadata, for graph inputs.
    if (mode === 'record') {
      ids.forEach((id, i) => {
        const dtype = nativeDtype(binding, tensors[i]!.dtype);
        if (!metaOfId.has(id) && dtype !== undefined) metaOfId.set(id, { shape: tensors[i]!.shape, dtype });
      });
    }
    return ids;
  };
  const createOutputTensor = backend.createOutputTensor;
  backend.createOutputTensor = function (metadata: OutputMetadata) {
    const tensor = createOutputTensor.call(this, metadata);
    const data = pendingSource.has(metadata.id) ? backend.tensorMap.get(tensor.dataId) : undefined;
    if (data) liveData.set(metadata.id, data);
    return tensor;
  };

  /** The graphs of the previous recording. */
  function freeSessions() {
    for (const session of sessions.values()) binding.deleteSavedModel(session.id);
    sessions.clear();
    releaseUploads();
  }

  function beginStep(next: Mode) {
    mode = next;
    cursor = 0;
    segmentStart = 0;
    pendingSource = new Map();
    pendingOf = [];
    realOf = [];
    externalIds = [];
    liveData = new Map();
    deadIds = new Set();
    sourceOfId = new Map();
    uploadCursor = 0;
  }

  function endStep() {
    mode = 'eager';
    for (const id of deferredDeletes) deleteNow(id);
    deferredDeletes = [];
    pendingSource = new Map();
    liveData = new Map();
    sourceOfId = new Map();
  }

  return {
    stats,
    get nativeTensors() {
      return metaOfId.size;
    },
    get translations() {
      return translated.size;
    },
    async run<T>(step: () => T | Promise<T>, stepNumber?: number): Promise<T> {
      // Counted from the run's first step (not from this capture's), so that a resumed run records and replays the
      // same steps as the uninterrupted one and computes each step the same way.
      const n = stepNumber ?? ++stepsRun;
      if (n <= warmup || stats.off !== undefined) return step();
      if (recording === undefined || partial) {
        freeSessions();
        recording = { ops: [], externals: [] };
        partial = false;
        beginStep('record');
      } else beginStep('replay');
      const recorded = mode === 'record';
      try {
        const result = await step();
        if (mode !== 'eager') {
          flush();
          // flush may have turned capturing off (a graph TensorFlow refused).
          if ((mode as Mode) !== 'eager' && !partial) {
            stats[recorded ? 'recorded' : 'replayed']++;
            if (!recorded) divergedInARow = 0;
          }
        }
        return result;
      } finally {
        // A step that threw leaves nothing pending behind.
        if (mode !== 'eager') flush();
        endStep();
      }
    },
    dispose() {
      captureState.active = false;
      backend.binding = binding;
      backend.createOutputTensor = createOutputTensor;
      backend.getInputTensorIds = getInputTensorIds;
      freeSessions();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
