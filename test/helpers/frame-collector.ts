/** A FrameHandler that records every frame as a plain value, for comparing streams. */
import type { FrameHandler } from '../../src/amqp/frame-reader.js';
import type { Method } from '../../src/amqp/codec/methods.js';
import type { ContentHeader } from '../../src/amqp/codec/properties.js';

export type Recorded =
  | { t: 'method'; channel: number; m: Method }
  | { t: 'header'; channel: number; h: ContentHeader }
  | { t: 'body'; channel: number; hex: string; remaining: number }
  | { t: 'heartbeat' };

export class FrameCollector implements FrameHandler {
  readonly frames: Recorded[] = [];
  method(channel: number, m: Method): void {
    this.frames.push({ t: 'method', channel, m });
  }
  header(channel: number, h: ContentHeader): void {
    this.frames.push({ t: 'header', channel, h });
  }
  body(channel: number, payload: Buffer, remaining: number): void {
    this.frames.push({ t: 'body', channel, hex: payload.toString('hex'), remaining });
  }
  heartbeat(): void {
    this.frames.push({ t: 'heartbeat' });
  }
}

/**
 * Records every Buffer allocation size while `fn` runs (Buffer.alloc,
 * allocUnsafe, allocUnsafeSlow), to check that a lying size is never allocated.
 */
export function largestAllocation(fn: () => void): number {
  const B = Buffer as unknown as Record<'alloc' | 'allocUnsafe' | 'allocUnsafeSlow', (n: number, ...rest: unknown[]) => Buffer>;
  const saved = { alloc: B.alloc, allocUnsafe: B.allocUnsafe, allocUnsafeSlow: B.allocUnsafeSlow };
  let max = 0;
  for (const k of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const orig = saved[k];
    B[k] = function (n: number, ...rest: unknown[]): Buffer {
      if (n > max) max = n;
      return orig.call(Buffer, n, ...rest);
    };
  }
  try {
    fn();
  } finally {
    B.alloc = saved.alloc;
    B.allocUnsafe = saved.allocUnsafe;
    B.allocUnsafeSlow = saved.allocUnsafeSlow;
  }
  return max;
}
