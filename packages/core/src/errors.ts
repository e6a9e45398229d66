/** Every error Gantry raises on purpose: one line that names the problem. */
export class GantryError extends Error {
  override name = 'GantryError';
}

/** Raised when a loss (or a reported scalar) becomes NaN or ±Infinity; training stops, checkpoints stay. */
export class NonFiniteLossError extends GantryError {
  override name = 'NonFiniteLossError';
  constructor(
    readonly step: number,
    readonly scalar: string,
    readonly value: number,
    readonly lastCheckpoint?: string,
  ) {
    super(
      `Non-finite loss at step ${step}: ${scalar} = ${value}. Training stopped` +
        (lastCheckpoint ? `; last good checkpoint: ${lastCheckpoint}` : '; no checkpoint was written yet'),
    );
  }
}

/** An error thrown inside a plugin, re-raised with the plugin and hook names in front. */
export class PluginError extends GantryError {
  override name = 'PluginError';
  constructor(
    readonly plugin: string,
    readonly hook: string,
    override readonly cause: unknown,
  ) {
    super(`plugin "${plugin}" failed in ${hook}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/**
 * Rejects option keys that a function does not know, so a typo fails loudly instead of being ignored.
 * `owner` names the plugin or function in the message.
 */
export function checkOptions(owner: string, options: object | undefined, known: readonly string[]): void {
  if (!options) return;
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new GantryError(`Unknown option "${key}" for ${owner} (known options: ${known.join(', ')})`);
    }
  }
}
