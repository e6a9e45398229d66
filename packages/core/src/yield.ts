/**
 * Lets timers, I/O, signal handlers and (in a page) input and painting run between training steps: a step's awaits
 * are microtasks only on CPU backends. setImmediate in Node; in a browser a MessageChannel message, a macrotask that,
 * unlike setTimeout(0), is not clamped to 4 ms after a few nested calls.
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
