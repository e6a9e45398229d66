import type * as tf from '@tensorflow/tfjs-core';

/** An attribute of a TensorFlow op as tfjs-node's addon takes it (`type` is one of the addon's TF_ATTR_* codes). */
export interface NativeAttr {
  name: string;
  type: number;
  value: unknown;
}

/** What the addon returns for each output of an op: its tensor id in the addon, shape and TF_* dtype code. */
export interface OutputMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** The parts of tfjs-node's addon (`backend.binding`) the engine's native code calls: raw eager ops on tensor ids. */
export interface TfjsNodeBinding {
  TF_ATTR_TYPE: number;
  TF_ATTR_INT: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_STRING: number;
  TF_ATTR_SHAPE: number;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_BOOL: number;
  executeOp(op: string, attrs: NativeAttr[], inputIds: number[], outputs: number): OutputMetadata[];
  createTensor(shape: number[], dtype: number, values: Float32Array | Int32Array): number;
  deleteTensor(id: number): void;
  tensorDataSync(id: number): ArrayBufferView;
  /** A SavedModel folder as a TensorFlow session; its id. */
  loadSavedModel(dir: string, tags: string): number;
  deleteSavedModel(id: number): void;
  /** Runs a session: feeds addon tensors to `inputs` ("name:0,…"), returns `outputs` as new addon tensors. */
  runSavedModel(id: number, inputIds: number[], inputs: string, outputs: string): OutputMetadata[];
}

/** The addon's TF_* code of a tfjs dtype it can hold as is (float32, int32, bool); undefined for the others. */
export function nativeDtype(b: TfjsNodeBinding, dtype: tf.DataType): number | undefined {
  return dtype === 'float32' ? b.TF_FLOAT : dtype === 'int32' ? b.TF_INT32 : dtype === 'bool' ? b.TF_BOOL : undefined;
}

/** tfjs-node's record of one tfjs tensor's data: its addon tensor id (−1: none), or values not uploaded yet. */
export interface NativeTensorData {
  id: number;
  values: unknown;
  refCount: number;
}

/** The parts of tfjs-node's NodeJSKernelBackend the engine's native code calls. */
export interface NativeBackend extends tf.KernelBackend {
  binding: TfjsNodeBinding;
  /** tfjs-node's DataStorage by dataId. */
  tensorMap: { get(dataId: object): NativeTensorData | undefined };
  /** Addon tensor ids of tfjs tensors (uploading values tfjs-node has not handed to TensorFlow yet). */
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  /** A tfjs tensor owning an op's output. */
  createOutputTensor(metadata: OutputMetadata): tf.Tensor;
  executeSingleOutput(op: string, attrs: NativeAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
  applyActivation(x: tf.Tensor, activation: string, prelu?: tf.Tensor, alpha?: number): tf.Tensor;
}
