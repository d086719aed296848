/**
 * sched_yield(2) for the polling loops (the shard's idle poll, the I/O
 * thread's poll for shard answers, the AMQP server's loop spin).
 *
 * A thread that polls holds its core. When another thread is runnable on
 * that core (a client process woken by our socket write, the shard that the
 * I/O thread waits for, a GC helper thread), it waits until the poller's
 * time slice ends or the poll gives up: tens to hundreds of µs. sched_yield
 * lets whatever waits on this core run first, and returns at once (well under
 * a µs) when nothing waits. With it, rpc round trips through `ringmq serve`
 * had a p99 about a fifth lower, and the engine's about two thirds lower
 * (docs/engine-protocol.md, "Yielding while polling").
 *
 * Node has no sched_yield, and ringmq has no native code. Node's WASI does
 * have one: uvwasi's `sched_yield` calls sched_yield(2) (SwitchToThread on
 * Windows). So an 88-byte WebAssembly module imports it and exports it:
 *
 *   (module
 *     (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
 *     (memory (export "memory") 0)
 *     (func (export "y") (result i32) call $y))
 *
 * If WASI cannot be set up, cpuYield does nothing and the loops poll as
 * before (`cpuYieldKind` says which).
 */
import { createRequire } from 'node:module';

const name = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];

/** The module above, assembled by hand (WebAssembly binary format 1). */
const MODULE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type section: [() -> i32]
  0x02, 0x26, 0x01, ...name('wasi_snapshot_preview1'), ...name('sched_yield'), 0x00, 0x00, // import: func of type 0
  0x03, 0x02, 0x01, 0x00, // function section: one func of type 0
  0x05, 0x03, 0x01, 0x00, 0x00, // memory section: one memory, min 0 pages
  0x07, 0x0e, 0x02, ...name('memory'), 0x02, 0x00, ...name('y'), 0x00, 0x01, // exports: memory 0, func 1 as "y"
  0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0b, // code: call 0; end
]);

// The few WebAssembly and WASI types used (the project's TypeScript libs do not declare WebAssembly).
interface WasmInstance {
  exports: Record<string, unknown>;
}
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => WasmInstance;
}
interface WasiLike {
  getImportObject(): object;
  initialize(instance: WasmInstance): void;
}

function load(): (() => number) | undefined {
  // node:wasi warns that it is experimental when it is first loaded; that
  // warning is about WASI programs, not this use, so it is kept off stderr.
  // (Node warns once per process: an application that loads node:wasi
  // itself later does not see it either.)
  const emitWarning = process.emitWarning;
  try {
    process.emitWarning = ((warning: string | Error, ...rest: unknown[]): void => {
      const text = typeof warning === 'string' ? warning : warning.message;
      if (/\bWASI\b/.test(text)) return;
      (emitWarning as (w: string | Error, ...r: unknown[]) => void).call(process, warning, ...rest);
    }) as typeof process.emitWarning;
    const { WASI } = createRequire(import.meta.url)('node:wasi') as { WASI: new (o: object) => WasiLike };
    const wasi = new WASI({ version: 'preview1', returnOnExit: true });
    const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
    const instance = new wasm.Instance(new wasm.Module(MODULE), wasi.getImportObject());
    wasi.initialize(instance);
    const y = instance.exports.y as () => number;
    y();
    return y;
  } catch {
    return undefined;
  } finally {
    process.emitWarning = emitWarning;
  }
}

const wasiYield = load();

/** 'sched_yield' when cpuYield reaches the system call, 'none' when it does nothing. */
export const cpuYieldKind: 'sched_yield' | 'none' = wasiYield ? 'sched_yield' : 'none';

/** Lets a thread that waits for this core run first; returns at once if none does. */
export const cpuYield: () => void = wasiYield ?? ((): void => {});
