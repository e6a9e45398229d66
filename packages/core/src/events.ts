import { EventEmitter } from 'eventemitter3';
import type { Phase } from './plugin.js';
import type { Trainer } from './trainer.js';

export type AlertSeverity = 'info' | 'warning' | 'error';

/**
 * Observe-only events of a run. Plugins add their own by declaration merging:
 *   declare module '@gantry/core' { interface GantryEvents { 'fid:done': { step: number; fid: number } } }
 */
export interface GantryEvents {
  'run:start': { trainer: Trainer; startStep: number; totalSteps: number };
  'phase:end': { step: number; phase: Phase; criticIndex: number };
  /**
   * Emitted once the step's scalars have been read from the device: `d_loss`, `g_loss`, each loss term under
   * `D/<plugin>/<term>` or `G/<plugin>/<term>`, and anything plugins reported. Reading is pipelined one step behind
   * training, so nothing forces a device sync in the middle of a step.
   */
  'step:end': { step: number; scalars: Record<string, number>; stepMs: number };
  eval: { step: number; metrics: Record<string, number>; meta?: Record<string, unknown> };
  checkpoint: { step: number; dir: string };
  alert: { step: number; kind: string; severity: AlertSeverity; message: string; value?: number; threshold?: number };
  'run:end': { step: number; reason: 'completed' | 'stopped' | 'error'; error?: Error };
}

export type EventName = keyof GantryEvents;
export type Listener<E extends EventName> = (payload: GantryEvents[E]) => void | Promise<void>;

/** The trainer's typed bus. Listeners run in order; a listener's returned promise is awaited before the step goes on. */
export class EventBus {
  private readonly emitter = new EventEmitter();

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return () => this.emitter.off(event, listener as (...args: unknown[]) => void);
  }

  /** Calls every listener and awaits the ones that return promises, so run folders are consistent at each event. */
  async emit<E extends EventName>(event: E, payload: GantryEvents[E]): Promise<void> {
    const listeners = this.emitter.listeners(event) as Listener<E>[];
    for (const listener of listeners) await listener(payload);
  }

  listenerCount(event: EventName): number {
    return this.emitter.listenerCount(event);
  }
}
