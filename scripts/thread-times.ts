/**
 * Per-thread scheduler times of this process (Linux: /proc/self/task/<tid>/schedstat), for the scripts that ask which
 * thread did a step's work: on-CPU and run-queue (runnable but waiting for a core) nanoseconds so far, by thread id.
 */
import { readFileSync, readdirSync } from 'node:fs';

export function threadSchedstat(): Map<string, [onCpuNs: number, waitingNs: number]> {
  const byThread = new Map<string, [number, number]>();
  for (const tid of readdirSync('/proc/self/task')) {
    const [onCpu, waiting] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
    byThread.set(tid, [onCpu!, waiting!]);
  }
  return byThread;
}
