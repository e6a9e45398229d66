import * as tf from '@tensorflow/tfjs-core';

type FusedConv2dArgs = Parameters<typeof tf.fused.conv2d>[0];
type FusedMatMulArgs = Parameters<typeof tf.fused.matMul>[0];

let installed = false;

function isLinear(activation: string | undefined): boolean {
  return activation == null || activation === 'linear';
}

/** True while a gradient tape records (the same test tfjs's fused ops use). */
function taping(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

/**
 * While a gradient tape records, tfjs's fused conv2d / matMul with a bias (every tfjs-layers Conv2D and Dense) run as
 * one kernel whose `customGrad` computes the gradient of *every* input when the backward pass reaches it: the input
 * gradient of a critic's first layer on real images, the critic's filter gradients in the generator step and inside a
 * gradient penalty's inner gradient are all computed and thrown away (per reference WGAN-GP step: 4 filter gradients
 * and 2 input gradients of the 12 + 12 convolutions). Under a tape these run as conv2d / matMul + add, whose
 * registered gradients are computed per input, only for the inputs the tape needs. Same values up to the rounding of
 * the bias add; outside a tape (inference, and non-linear activations, which tfjs already unfuses there) nothing
 * changes. tfjs-core's `fused` namespace is a plain object in its Node build; where it is frozen (an ES-module bundle)
 * this is skipped.
 */
export function installLazyFusedGradients(): void {
  if (installed) return;
  installed = true;
  const fused = tf.fused as unknown as { conv2d: (args: FusedConv2dArgs) => tf.Tensor; matMul: (args: FusedMatMulArgs) => tf.Tensor };
  if (Object.isFrozen(fused)) return;
  const stockConv2d = fused.conv2d;
  const stockMatMul = fused.matMul;
  fused.conv2d = (args: FusedConv2dArgs) => {
    if (!taping() || !isLinear(args.activation) || args.bias == null) return stockConv2d(args);
    return tf.tidy(() => {
      const y = tf.conv2d(args.x, args.filter, args.strides, args.pad, args.dataFormat, args.dilations, args.dimRoundingMode);
      return tf.add(y, args.bias!);
    });
  };
  fused.matMul = (args: FusedMatMulArgs) => {
    if (!taping() || !isLinear(args.activation) || args.bias == null) return stockMatMul(args);
    return tf.tidy(() => tf.add(tf.matMul(args.a, args.b, args.transposeA, args.transposeB), args.bias!));
  };
}
