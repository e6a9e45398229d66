import type { Trainer } from '@gantry/core';

/** Tag of a step's folder-style file name: 000100 for step 100. */
export function stepName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Emits an alert without ever failing the caller (an alert about a problem must not become a new problem). */
export async function emitAlert(
  trainer: Trainer,
  alert: { step: number; kind: string; severity: 'info' | 'warning' | 'error'; message: string; value?: number; threshold?: number },
): Promise<void> {
  try {
    await trainer.bus.emit('alert', alert);
  } catch (error) {
    console.warn(`[gantry] alert listener failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Warns once per key; observability plugins report their own trouble this way instead of stopping training. */
export function onceWarner(prefix: string, log: (m: string) => void = (m) => console.warn(m)) {
  const seen = new Set<string>();
  return (key: string, message: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    log(`${prefix}: ${message}`);
  };
}
