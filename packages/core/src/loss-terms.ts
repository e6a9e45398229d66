import * as tf from '@tensorflow/tfjs-core';
import { PluginError } from './errors.js';
import type { BoundHook, HookRunner } from './hooks.js';
import type { LossContext } from './plugin.js';
import type { StepScalars } from './step-scalars.js';

/**
 * Adds the plugins' `lossTerms` to a phase's `loss`, inside its gradient computation, recording each term as
 * `<phase>/<plugin>` (a bare scalar) or `<phase>/<plugin>/<term>`. `contextFor` gives each plugin its own context.
 */
export function addLossTerms(
  hooks: HookRunner,
  loss: tf.Scalar,
  contextFor: (hook: BoundHook) => LossContext,
  where: Pick<LossContext, 'step' | 'phase'>,
  scalars: StepScalars,
): tf.Scalar {
  const parts: tf.Scalar[] = [loss];
  const { step, phase } = where;
  for (const { hook, value: out } of hooks.collect<tf.Scalar | Record<string, tf.Scalar>>('lossTerms', step, phase, (hook) => [contextFor(hook)])) {
    const terms = out instanceof tf.Tensor ? { [hook.plugin]: out } : out;
    if (typeof terms !== 'object') {
      throw new PluginError(hook.plugin, 'hook "lossTerms"', 'must return a scalar tensor or { name: scalar tensor }');
    }
    for (const [term, value] of Object.entries(terms)) {
      if (!(value instanceof tf.Tensor) || value.size !== 1) {
        throw new PluginError(hook.plugin, 'hook "lossTerms"', `term "${term}" must be a scalar tensor`);
      }
      const label = term === hook.plugin ? `${phase}/${hook.plugin}` : `${phase}/${hook.plugin}/${term}`;
      const scalar = tf.reshape(value, []) as tf.Scalar;
      scalars.add(label, scalar);
      parts.push(scalar);
    }
  }
  return parts.length === 1 ? loss : (tf.addN(parts) as tf.Scalar);
}
