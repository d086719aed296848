/**
 * Messages between bench/amqp.bench.ts (the parent) and its client processes
 * bench/amqp-client.ts (one `child_process.fork` each, IPC channel with the
 * 'advanced' serialization, so typed arrays cross as such).
 *
 * Life of a client: fork -> `job` -> (connects, sets up) `ready` -> `go` ->
 * works until `stop`, answering each `mark` with its counter and its own
 * clock -> `stopped` -> exits. Any failure: `error`, then exit 1.
 */

/** What one client process does. Every role opens its own connection and channel. */
export type Job =
  | {
      role: 'consume';
      url: string;
      queue: string;
      payload: number;
      /** false: manual ack, one basic.ack per message. */
      noAck: boolean;
      /** basic.qos prefetch count (manual ack only). */
      prefetch: number;
    }
  | {
      role: 'publish';
      url: string;
      exchange: string;
      routingKey: string;
      payload: number;
      persistent: boolean;
      /** Publisher confirms with at most this many unconfirmed; 0 = no confirms. */
      confirmWindow: number;
      /**
       * Most messages allowed between published and the slowest queue's
       * consumed count (the parent relays it in `consumed`): a steady state
       * with a bounded queue, not a queue that grows for the whole run.
       */
      maxBacklog: number;
    }
  | { role: 'rpc-server'; url: string; queue: string }
  | { role: 'rpc-client'; url: string; queue: string; payload: number };

export type ToClient =
  | { type: 'job'; job: Job }
  | { type: 'go' }
  /** Parent asks for the counter now (window boundaries and interval samples). */
  | { type: 'mark' }
  /** Publisher only: the slowest queue's consumed count, for the backlog bound. */
  | { type: 'consumed'; count: number }
  | { type: 'stop' }
  | { type: 'close' };

export type FromClient =
  | { type: 'ready' }
  /** count: messages consumed / published / round trips so far; t: performance.timeOrigin + now(), ms. */
  | { type: 'mark'; count: number; t: number }
  /** Consumers and publishers: pushed every PROGRESS_MS while running (backlog bound, warm-up end). */
  | { type: 'progress'; count: number }
  | {
      type: 'stopped';
      count: number;
      /** Latencies in µs recorded from the first mark on (confirms for publishers with confirms, round trips for rpc-client). */
      latencies_us?: Float64Array;
      /** Consumers: messages out of sequence or of the wrong size (must be 0). */
      errors: number;
    }
  | { type: 'error'; message: string };

/** How often consumers push their count (ms). */
export const PROGRESS_MS = 5;
