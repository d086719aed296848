/**
 * Sleep and wake for one side of a ring, on an Int32Array slot pair:
 * a sequence field the sleeper waits on and a sleeping flag that tells the
 * other side whether a notify is needed ("wake only sleepers").
 *
 * Ordering (all Atomics here are sequentially consistent):
 *   sleeper: store(flag, 1) ; wait(seq, seen)      -- wait re-reads seq atomically
 *   waker:   store(seq, x)  ; load(flag) === 1 ? notify(seq)
 * If the waker's load of the flag reads 0, the sleeper's store of the flag
 * comes later in the total order, so the sleeper's wait reads the new seq and
 * returns "not-equal" at once. If it reads 1, the notify either wakes the
 * sleeper or precedes a wait that then sees the new seq. No wakeup is lost.
 * A notify costs ~83 ns with no waiter and ~2 µs with one (stack-notes §2), so
 * the waker skips it unless the flag is set.
 */

/**
 * Parks the calling thread until `ctl[seqField]` is no longer `seen`, a notify
 * arrives, or `timeoutMs` passes. Blocks the event loop: use it on threads
 * that do no asynchronous I/O (or on the main thread only in tools).
 */
export function sleepSync(ctl: Int32Array, flagField: number, seqField: number, seen: number, timeoutMs: number): void {
  Atomics.store(ctl, flagField, 1);
  Atomics.wait(ctl, seqField, seen | 0, timeoutMs);
  Atomics.store(ctl, flagField, 0);
}

/**
 * The same without blocking the event loop (`Atomics.waitAsync`). A pending
 * waitAsync holds no handle, so a thread whose only pending work is this wait
 * would exit (stack-notes §2); unless the caller says something else keeps
 * the thread alive (`keepAlive` false), a timer is held for the duration of
 * the sleep so that awaiting a ring keeps the thread alive, as awaiting a
 * socket does. Allocates a promise (and the timer) per sleep, never per record.
 */
export async function sleepAsync(ctl: Int32Array, flagField: number, seqField: number, seen: number, timeoutMs: number, keepAlive = true): Promise<void> {
  Atomics.store(ctl, flagField, 1);
  const r = Atomics.waitAsync(ctl, seqField, seen | 0, timeoutMs);
  if (r.async && !keepAlive) await r.value;
  else if (r.async) {
    const keepAlive = setTimeout(noop, KEEP_ALIVE_MS);
    try {
      await r.value;
    } finally {
      clearTimeout(keepAlive);
    }
  }
  Atomics.store(ctl, flagField, 0);
}

/** Longest delay a Node timer accepts (2^31 - 1 ms); it only has to exist, never to fire. */
const KEEP_ALIVE_MS = 0x7fffffff;
function noop(): void {}

/** Called after `Atomics.store(ctl, seqField, …)`: wakes the other side only if it sleeps. */
export function wake(ctl: Int32Array, flagField: number, seqField: number): void {
  if (Atomics.load(ctl, flagField) !== 0) Atomics.notify(ctl, seqField, 1);
}
