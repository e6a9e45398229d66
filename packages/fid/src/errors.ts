import { GantryError } from '@gantry/core';

/** A metric or extractor problem: bad shapes, too few samples, a model file that cannot be read. */
export class FidError extends GantryError {
  override name = 'FidError';
}
