import * as tf from '@tensorflow/tfjs-core';
import { GantryError, PluginError } from './errors.js';
import type { EventBus, EventName } from './events.js';
import {
  HOOK_NAMES,
  scheduleMatches,
  type GantryPlugin,
  type HookName,
  type HookOrder,
  type Hooks,
  type Phase,
  type Schedule,
} from './plugin.js';

/**
 * How the loop calls a hook, after Rollup's PluginDriver and tapable: `sequential` hooks may be async and are awaited
 * one after the other; `sync` hooks run one after the other and must not return a Promise; `waterfall` hooks pass a
 * value along (each may return a replacement); `collect` hooks return values that the core gathers.
 */
export type HookKind = 'sequential' | 'sync' | 'waterfall' | 'collect';

export const HOOK_KINDS: Readonly<Record<HookName, HookKind>> = {
  setup: 'sequential',
  beforeStep: 'sequential',
  beforePhase: 'sequential',
  transformBatch: 'waterfall',
  augment: 'waterfall',
  lossTerms: 'collect',
  generatorLoss: 'waterfall',
  skipUpdate: 'collect',
  transformGrads: 'waterfall',
  afterApply: 'sync',
  teardown: 'sequential',
};

/** Hooks that run once per run, not per step: they take no schedule. */
const UNSCHEDULED: readonly HookName[] = ['setup', 'teardown'];

export interface BoundHook {
  plugin: string;
  hook: HookName;
  handler: (...args: any[]) => any;
  schedule: Schedule;
  order?: HookOrder;
}

type Scheduled = { handler: (...args: any[]) => any; order?: HookOrder } & Schedule;

const SCHEDULE_KEYS = ['handler', 'every', 'once', 'after', 'phase', 'order'];

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value != null && typeof (value as { then?: unknown }).then === 'function';
}

function isAsyncFunction(fn: unknown): boolean {
  return typeof fn === 'function' && fn.constructor?.name === 'AsyncFunction';
}

/**
 * Checks one hook or listener entry of a plugin and splits it into handler, schedule and order. Every mistake is a
 * PluginError naming the plugin and the hook, raised when the plugin is bound (the Trainer's constructor).
 */
export function unpackHook(plugin: string, where: string, value: unknown, scheduled: boolean): Omit<BoundHook, 'hook' | 'plugin'> {
  const fail = (message: string): never => {
    throw new PluginError(plugin, where, message);
  };
  if (typeof value === 'function') return { handler: value as BoundHook['handler'], schedule: {} };
  if (value == null || typeof value !== 'object') return fail(`must be a function or { handler, every, once, after, phase, order }, got ${String(value)}`);
  const entry = value as Scheduled;
  for (const key of Object.keys(entry)) {
    if (!SCHEDULE_KEYS.includes(key)) fail(`unknown key "${key}" (known: ${SCHEDULE_KEYS.join(', ')})`);
  }
  if (typeof entry.handler !== 'function') fail('has no handler function');
  const { handler, order, ...schedule } = entry;
  if (!scheduled && (schedule.every !== undefined || schedule.once !== undefined || schedule.after !== undefined || schedule.phase !== undefined)) {
    fail('runs once per run and takes no schedule (every, once, after, phase)');
  }
  if (schedule.every !== undefined && !(Number.isInteger(schedule.every) && schedule.every >= 1)) {
    fail(`every must be an integer >= 1, got ${String(schedule.every)}`);
  }
  if (schedule.once !== undefined && !(Number.isInteger(schedule.once) && schedule.once >= 1)) {
    fail(`once must be an integer >= 1 (steps count from 1), got ${String(schedule.once)}`);
  }
  if (schedule.after !== undefined && !(Number.isInteger(schedule.after) && schedule.after >= 0)) {
    fail(`after must be an integer >= 0, got ${String(schedule.after)}`);
  }
  if (schedule.phase !== undefined && schedule.phase !== 'D' && schedule.phase !== 'G') {
    fail(`phase must be "D" or "G", got ${String(schedule.phase)}`);
  }
  if (order !== undefined && order !== 'pre' && order !== 'post') fail(`order must be "pre" or "post", got ${String(order)}`);
  return { handler, schedule, order };
}

/** Stable sort into the three groups: `pre`, unordered, `post`; within a group, plugin-list order. */
export function byOrder<T extends { order?: HookOrder }>(items: T[]): T[] {
  const rank = (o?: HookOrder) => (o === 'pre' ? 0 : o === 'post' ? 2 : 1);
  return items.map((item, i) => ({ item, i })).sort((a, b) => rank(a.item.order) - rank(b.item.order) || a.i - b.i).map((x) => x.item);
}

/**
 * The one place plugins are called from: binds every plugin's hooks once (validated), keeps them in run order, and
 * calls them by kind with each error wrapped in a PluginError that names the plugin and the hook.
 */
export class HookRunner {
  private readonly hooks = new Map<HookName, BoundHook[]>();

  constructor(plugins: readonly GantryPlugin[]) {
    const names = new Set<string>();
    for (const plugin of plugins) {
      if (!plugin || typeof plugin.name !== 'string' || plugin.name.length === 0) {
        throw new GantryError('Every plugin needs a non-empty name (use definePlugin)');
      }
      if (names.has(plugin.name)) throw new GantryError(`Plugin "${plugin.name}" is listed twice`);
      names.add(plugin.name);
      for (const [name, value] of Object.entries(plugin.hooks ?? {}) as [HookName, Hooks[HookName]][]) {
        if (value === undefined) continue;
        const where = `hook "${name}"`;
        if (!HOOK_NAMES.includes(name)) {
          throw new PluginError(plugin.name, where, `unknown hook (known: ${HOOK_NAMES.join(', ')})`);
        }
        const bound = unpackHook(plugin.name, where, value, !UNSCHEDULED.includes(name));
        const kind = HOOK_KINDS[name];
        if ((kind === 'sync' || kind === 'waterfall' || kind === 'collect') && isAsyncFunction(bound.handler)) {
          throw new PluginError(plugin.name, where, 'is synchronous (it runs inside the step), but the handler is an async function');
        }
        const list = this.hooks.get(name) ?? [];
        list.push({ plugin: plugin.name, hook: name, ...bound });
        this.hooks.set(name, list);
      }
    }
    for (const [name, list] of this.hooks) this.hooks.set(name, byOrder(list));
  }

  /** The hooks of `name` whose schedule matches, in run order. */
  active(name: HookName, step?: number, phase?: Phase): BoundHook[] {
    const all = this.hooks.get(name) ?? [];
    return step === undefined ? all : all.filter((h) => scheduleMatches(h.schedule, step, phase));
  }

  /** Calls one hook, wrapping anything it throws; a sync hook that returns a Promise is an error too. */
  call<T>(hook: BoundHook, ...args: unknown[]): T {
    let out: unknown;
    try {
      out = hook.handler(...args);
    } catch (error) {
      throw error instanceof PluginError ? error : new PluginError(hook.plugin, `hook "${hook.hook}"`, error);
    }
    if (HOOK_KINDS[hook.hook] !== 'sequential' && isThenable(out)) {
      // Keep an unhandled rejection from surfacing later: the error below is the report.
      (out as Promise<unknown>).then(undefined, () => undefined);
      throw new PluginError(hook.plugin, `hook "${hook.hook}"`, 'returned a Promise, but this hook is synchronous (it runs inside the step); do async work in beforeStep or beforePhase');
    }
    return out as T;
  }

  /** Awaits each matching hook in turn (setup, beforeStep, beforePhase, teardown). */
  async sequential(name: HookName, step: number | undefined, phase: Phase | undefined, args: (hook: BoundHook) => unknown[]): Promise<void> {
    for (const hook of this.active(name, step, phase)) {
      try {
        await this.call(hook, ...args(hook));
      } catch (error) {
        throw error instanceof PluginError ? error : new PluginError(hook.plugin, `hook "${name}"`, error);
      }
    }
  }

  /**
   * Awaits every hook of `name` in turn even when some fail (teardown: each closes its own files); each failure, as a
   * PluginError, goes to `failed`.
   */
  async settled(name: HookName, args: (hook: BoundHook) => unknown[], failed: (error: PluginError) => void): Promise<void> {
    for (const hook of this.active(name)) {
      try {
        await this.call(hook, ...args(hook));
      } catch (error) {
        failed(error instanceof PluginError ? error : new PluginError(hook.plugin, `hook "${name}"`, error));
      }
    }
  }

  /** Runs each matching synchronous hook in turn (afterApply). */
  sync(name: HookName, step: number, phase: Phase, args: (hook: BoundHook) => unknown[]): void {
    for (const hook of this.active(name, step, phase)) this.call(hook, ...args(hook));
  }

  /**
   * Passes `value` through the matching hooks: each gets the current value and may return a replacement (or nothing to
   * keep it). `replaced(old, next, hook)` lets the core release what the replacement no longer holds.
   */
  waterfall<T>(
    name: HookName,
    step: number,
    phase: Phase,
    value: T,
    args: (hook: BoundHook, value: T) => unknown[],
    replaced: (old: T, next: T, hook: BoundHook) => void = () => undefined,
  ): T {
    let current = value;
    for (const hook of this.active(name, step, phase)) {
      const next = this.call<T | undefined>(hook, ...args(hook, current));
      if (next !== undefined && next !== null && next !== current) {
        replaced(current, next, hook);
        current = next;
      }
    }
    return current;
  }

  /** Calls the matching hooks and returns what each returned (undefined results left out), with the plugin's name. */
  collect<T>(name: HookName, step: number, phase: Phase, args: (hook: BoundHook) => unknown[]): { hook: BoundHook; value: T }[] {
    const out: { hook: BoundHook; value: T }[] = [];
    for (const hook of this.active(name, step, phase)) {
      const value = this.call<T | undefined>(hook, ...args(hook));
      if (value !== undefined && value !== null) out.push({ hook, value });
    }
    return out;
  }
}

/**
 * Subscribes every plugin's event listeners to `bus`, `pre` listeners first and `post` last, each filtered by its
 * schedule and with errors wrapped in a PluginError naming the plugin and the event.
 */
export function bindListeners(
  plugins: readonly GantryPlugin[],
  bus: EventBus,
  currentStep: () => number,
  call: (handler: BoundHook['handler'], payload: unknown) => unknown,
): void {
  const listeners: (Omit<BoundHook, 'hook'> & { event: EventName })[] = [];
  for (const plugin of plugins) {
    for (const [event, value] of Object.entries(plugin.on ?? {})) {
      if (value === undefined) continue;
      const bound = unpackHook(plugin.name, `listener "${event}"`, value, true);
      listeners.push({ plugin: plugin.name, event: event as EventName, ...bound });
    }
  }
  for (const listener of byOrder(listeners)) {
    bus.on(listener.event, async (payload: any) => {
      const step = typeof payload?.step === 'number' ? payload.step : currentStep();
      if (!scheduleMatches(listener.schedule, step, payload?.phase)) return;
      try {
        await call(listener.handler, payload);
      } catch (error) {
        throw error instanceof PluginError ? error : new PluginError(listener.plugin, `listener "${listener.event}"`, error);
      }
    });
  }
}

/** Disposes the tensors of `old` that `next` does not hold (a waterfall replacement's cleanup). */
export function disposeReplaced(old: tf.NamedTensorMap | Record<string, tf.Tensor | undefined>, next: object): void {
  const kept = new Set(Object.values(next));
  for (const t of Object.values(old)) if (t && !kept.has(t)) t.dispose();
}
