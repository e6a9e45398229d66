import * as tf from '@tensorflow/tfjs-core';
import { adamStep, patchAdam, type AdamInternals } from '../adam-patch.js';
import type { NativeBackend, TfjsNodeBinding } from './binding.js';
import { captureState } from './capture-state.js';

/**
 * TensorFlow's name for a resource variable owned by its handle: freed when the handle is deleted, never shared
 * through the resource manager (what TensorFlow's Python eager variables use).
 */
const ANONYMOUS_RESOURCE = 'cd2c89b7-88b7-44c8-ad83-06c2a9158347';

/** One weight's resource variables (weight, m, v) and which tfjs tensors they hold, to notice outside assignments. */
interface Slot {
  handles: [number, number, number];
  /** The dataIds of the tfjs weight, m and v that the resources equal; null until first written. */
  synced: [object | null, object | null, object | null];
}

const slotsOf = new WeakMap<tf.Optimizer, Map<string, Slot>>();

/** Float32 scalars as addon tensors, kept for the process: Adam's β's, learning rates, 1. */
const constants = new Map<number, number>();
function constant(b: TfjsNodeBinding, value: number): number {
  let id = constants.get(value);
  if (id == null) {
    if (constants.size >= 256) {
      for (const old of constants.values()) b.deleteTensor(old);
      constants.clear();
    }
    id = b.createTensor([], b.TF_FLOAT, Float32Array.of(value));
    constants.set(value, id);
  }
  return id;
}

function newSlot(b: TfjsNodeBinding, shape: number[]): Slot {
  const handle = () =>
    b.executeOp(
      'VarHandleOp',
      [
        { name: 'container', type: b.TF_ATTR_STRING, value: '' },
        {
          name: 'shared_name',
          type: b.TF_ATTR_STRING,
          value: ANONYMOUS_RESOURCE,
        },
        { name: 'dtype', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
        { name: 'shape', type: b.TF_ATTR_SHAPE, value: shape },
      ],
      [],
      1,
    )[0].id;
  return {
    handles: [handle(), handle(), handle()],
    synced: [null, null, null],
  };
}

function freeSlots(b: TfjsNodeBinding, optimizer: tf.Optimizer): void {
  for (const slot of slotsOf.get(optimizer)?.values() ?? []) slot.handles.forEach((h) => b.deleteTensor(h));
  slotsOf.delete(optimizer);
}

/**
 * Drops the addon tensor behind a tfjs tensor that only a variable about to be reassigned holds (refCount 1): it
 * shares the buffer of the resource variable it was read from, and TensorFlow copies a buffer with another reference
 * before writing to it, so without this every update copies the weight, m and v (10.8 MB per reference step) into
 * fresh memory. The tfjs tensor has no data until the variable is assigned the value read back after the update.
 */
function releaseHold(backend: NativeBackend, dataId: object): boolean {
  const info = backend.tensorMap.get(dataId);
  if (info == null || info.refCount !== 1 || info.values != null || !(info.id >= 0)) return false;
  backend.binding.deleteTensor(info.id);
  info.id = -1;
  return true;
}

/**
 * This update's β's as float32 and, uploaded (the caller deletes them), the bias corrections folded into the step
 * size α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) and ε̂ = ε·√(1 − β₂ᵗ), in float64 from the step count: TensorFlow's own 1 − β₂ᵗ
 * from a float32 power cancels to ~1e-5 relative error in early steps (so does tfjs's).
 */
function biasCorrected(b: TfjsNodeBinding, optimizer: tf.AdamOptimizer) {
  const self = optimizer as unknown as AdamInternals;
  const t = (optimizer as unknown as { iterations: number }).iterations + 1;
  const [beta1, beta2] = [Math.fround(self.beta1), Math.fround(self.beta2)];
  const root2 = Math.sqrt(1 - beta2 ** t);
  return {
    beta1,
    beta2,
    stepSize: b.createTensor([], b.TF_FLOAT, Float32Array.of((self.learningRate * root2) / (1 - beta1 ** t))),
    epsilonHat: b.createTensor([], b.TF_FLOAT, Float32Array.of(self.epsilon * root2)),
  };
}

/**
 * tf.train.adam's update on the tensorflow backend as TensorFlow's own fused `ResourceApplyAdam`: one pass over each
 * weight instead of 14 element-wise ops and 6 scalar uploads. The weight, m and v live in resource variables between
 * steps; after each update they are read back (`ReadVariableOp` shares the buffer; TensorFlow copies on the next
 * write) and assigned to the tfjs variables, so getWeights, checkpoints and everything else see the usual state.
 * A tfjs variable assigned from outside (restore, setWeights) has a different dataId: it is copied into its resource
 * before the update.
 *
 * Arithmetic: TensorFlow computes m += (g − m)(1 − β₁), v += (g² − v)(1 − β₂), w −= α·m / (√v + ε̂). Its bias
 * corrections are given as α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) and ε̂ = ε·√(1 − β₂ᵗ), computed here in float64 from the step
 * count, which makes this w − lr·m̂/(√v̂ + ε) with float32 roundings only: within 1e-6 of the float64 closed form.
 * tfjs's own update is up to ~3e-5 off it in early steps: 1 − β₂ᵗ from a float32 running product of β₂ ≈ 1 cancels
 * (its relative error is ~3e-8 / (1 − β₂ᵗ)), and it decays v with float32(β₂) but weights g² with float32(1 − β₂),
 * which for β₂ = 0.999 differ from a convex pair by 1.3e-5. The weights agree with tfjs's to ~1e-9 relative per
 * step (tests in @gantry/tensorflow-tests).
 */
function resourceApplyAdam(
  optimizer: tf.AdamOptimizer,
  names: string[],
  gradients: (tf.Tensor | undefined)[],
): boolean {
  const backend = tf.backend() as NativeBackend;
  const b = backend.binding;
  let slots = slotsOf.get(optimizer);
  if (slots == null) {
    slots = new Map();
    slotsOf.set(optimizer, slots);
    const dispose = optimizer.dispose.bind(optimizer);
    optimizer.dispose = () => {
      freeSlots(b, optimizer);
      dispose();
    };
  }
  const assignAttrs = [
    { name: 'dtype', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'validate_shape', type: b.TF_ATTR_BOOL, value: false },
  ];
  const readAttrs = [{ name: 'dtype', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT }];
  const readVariable = (handle: number) => b.executeOp('ReadVariableOp', readAttrs, [handle], 1)[0];
  const applyAttrs = [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'use_locking', type: b.TF_ATTR_BOOL, value: false },
    { name: 'use_nesterov', type: b.TF_ATTR_BOOL, value: false },
  ];
  const { beta1, beta2, stepSize, epsilonHat } = biasCorrected(b, optimizer);
  const zero = constant(b, 0);
  const scalars = [zero, zero, stepSize, constant(b, beta1), constant(b, beta2), epsilonHat];
  try {
    adamStep(optimizer, names, gradients, (value, m, v, gradient, name) => {
      let slot = slots.get(name);
      if (slot == null) {
        slot = newSlot(b, value.shape);
        slots.set(name, slot);
      }
      const tensors = [value, m, v];
      // validate_shape false: a weight replaced by one of another shape (a model rebuilt under the same name) is taken.
      tensors.forEach((t, k) => {
        if (slot.synced[k] !== t.dataId) {
          b.executeOp('AssignVariableOp', assignAttrs, [slot.handles[k], ...backend.getInputTensorIds([t])], 0);
        }
      });
      const released = tensors.filter((t, k) => slot.synced[k] === t.dataId && releaseHold(backend, t.dataId));
      try {
        b.executeOp(
          'ResourceApplyAdam',
          applyAttrs,
          [...slot.handles, ...scalars, ...backend.getInputTensorIds([gradient])],
          0,
        );
      } catch (err) {
        // Unchanged resources: give the released tensors their values back before reporting the failure.
        for (const t of released) backend.tensorMap.get(t.dataId)!.id = readVariable(slot.handles[tensors.indexOf(t)]).id;
        throw err;
      }
      tensors.forEach((t, k) => {
        const read = backend.createOutputTensor(readVariable(slot.handles[k]));
        t.assign(read);
        slot.synced[k] = t.dataId;
      });
    });
  } finally {
    b.deleteTensor(stepSize);
    b.deleteTensor(epsilonHat);
  }
  return true;
}

/**
 * ResourceApplyAdam's arithmetic (TensorFlow's CPU functor: m += (g − m)(1 − β₁); v += (g² − v)(1 − β₂);
 * w −= m·α / (√v + ε̂)) as twelve plain TensorFlow ops per weight, called on the addon directly (no tfjs tape or
 * bookkeeping per op), for steps run as graphs (graph-capture.ts), which cannot hold resource variables.
 */
function tensorApplyAdam(optimizer: tf.AdamOptimizer, names: string[], gradients: (tf.Tensor | undefined)[]): boolean {
  const backend = tf.backend() as NativeBackend;
  const b = backend.binding;
  const { beta1, beta2, stepSize, epsilonHat } = biasCorrected(b, optimizer);
  const oneMinusBeta1 = constant(b, Math.fround(1 - beta1));
  const oneMinusBeta2 = constant(b, Math.fround(1 - beta2));
  const attrs = [{ name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT }];
  const op = (name: string, ...inputs: number[]) => b.executeOp(name, attrs, inputs, 1)[0].id;
  const temporaries: number[] = [];
  const temp = (id: number) => (temporaries.push(id), id);
  try {
    adamStep(optimizer, names, gradients, (value, m, v, gradient) => {
      const [w0, m0, v0, g] = backend.getInputTensorIds([value, m, v, gradient]);
      const m1 = op('AddV2', m0, temp(op('Mul', temp(op('Sub', g, m0)), oneMinusBeta1)));
      const v1 = op('AddV2', v0, temp(op('Mul', temp(op('Sub', temp(op('Square', g)), v0)), oneMinusBeta2)));
      const denominator = temp(op('AddV2', temp(op('Sqrt', v1)), epsilonHat));
      const w1 = op('Sub', w0, temp(op('RealDiv', temp(op('Mul', m1, stepSize)), denominator)));
      const shaped = (id: number) => ({ id, shape: value.shape, dtype: b.TF_FLOAT });
      value.assign(backend.createOutputTensor(shaped(w1)));
      m.assign(backend.createOutputTensor(shaped(m1)));
      v.assign(backend.createOutputTensor(shaped(v1)));
    });
  } finally {
    for (const id of [stepSize, epsilonHat, ...temporaries]) b.deleteTensor(id);
  }
  return true;
}

/**
 * Routes tf.train.adam's updates on the tensorflow backend through `ResourceApplyAdam`, or through the same
 * arithmetic as plain ops while steps are captured as graphs, which cannot hold resource variables (idempotent).
 */
export function installNativeAdam(): void {
  patchAdam('tensorflow', (optimizer, names, gradients) =>
    (captureState.active ? tensorApplyAdam : resourceApplyAdam)(optimizer, names, gradients),
  );
}
