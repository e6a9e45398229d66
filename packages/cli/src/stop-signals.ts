/** The signals that mean "stop": Ctrl-C, `kill`/`docker stop`/systemd/`timeout`, and a closed terminal or ssh drop. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Copies of one Ctrl-C (the terminal signals every process of the group; npm relays it again) arrive within this. */
export const SECOND_SIGNAL_AFTER_MS = 1000;

const EXIT_CODE: Record<(typeof STOP_SIGNALS)[number], number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

const ignoreOutputErrors = () => undefined;

/**
 * Makes the stop signals ask `stop()` to finish the current step (the caller then checkpoints, reports and exits 0);
 * the same signal again a second or more later exits at once. Returns the function that removes the handlers.
 *
 * Output errors are ignored while installed: after a hangup every write to the gone terminal fails (EIO), and that
 * must not kill the process before it has written its checkpoint.
 */
export function stopOnSignals(stop: (signal: NodeJS.Signals) => void, log: (line: string) => void = (l) => console.error(l)): () => void {
  let firstSignalAt: number | undefined;
  const onSignal = (signal: (typeof STOP_SIGNALS)[number]) => {
    const now = Date.now();
    if (firstSignalAt !== undefined) {
      if (now - firstSignalAt >= SECOND_SIGNAL_AFTER_MS) process.exit(EXIT_CODE[signal]);
      return;
    }
    firstSignalAt = now;
    log(`\n${signal}: finishing this step and writing a checkpoint (again to abort)…`);
    stop(signal);
  };
  const handlers = STOP_SIGNALS.map((signal) => [signal, () => onSignal(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  process.stdout.on('error', ignoreOutputErrors);
  process.stderr.on('error', ignoreOutputErrors);
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    process.stdout.off('error', ignoreOutputErrors);
    process.stderr.off('error', ignoreOutputErrors);
  };
}
