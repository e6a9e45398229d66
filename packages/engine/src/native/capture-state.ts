/**
 * Whether a step capture (graph-capture.ts) is installed: TensorFlow state outside the step's tensors (the native
 * Adam's resource variables) cannot be part of a graph, so code that keeps such state steps aside while it is.
 */
export const captureState = { active: false };
