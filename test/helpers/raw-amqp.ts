/**
 * A raw AMQP 0-9-1 client for tests that need to see or send exact frames:
 * our codec writes, our frame reader (client side: no protocol header)
 * reads, every frame received is recorded. Not a client library: just
 * enough to do the handshake and send what a test wants, valid or not.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { PROTOCOL_HEADER } from '../../src/amqp/codec/constants.js';
import { encodeMethodFrame, writeContent } from '../../src/amqp/codec/frames.js';
import { method, MethodId, type Method } from '../../src/amqp/codec/methods.js';
import type { BasicProperties } from '../../src/amqp/codec/properties.js';
import { Writer } from '../../src/amqp/codec/writer.js';
import { FrameReader } from '../../src/amqp/frame-reader.js';
import { FrameCollector, type Recorded } from './frame-collector.js';

export class RawClient {
  readonly socket: Socket;
  readonly frames: Recorded[];
  /** Raw bytes received, in order (for byte-exact checks). */
  readonly raw: Buffer[] = [];
  private readonly reader: FrameReader;
  readonly ended: Promise<void>;
  readerError: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    const collector = new FrameCollector();
    this.frames = collector.frames;
    this.reader = new FrameReader(collector, { protocolHeader: false, frameMax: 0xffffffff });
    socket.on('data', (d: Buffer) => {
      this.raw.push(d);
      if (this.readerError !== null) return;
      try {
        this.reader.push(d);
      } catch (e) {
        this.readerError = e as Error;
      }
    });
    socket.on('error', () => {});
    this.ended = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  /** A TCP connection, nothing sent yet. */
  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Header, start-ok (PLAIN), tune-ok, open: ready to open channels. */
  static async handshake(port: number, opts: { user?: string; password?: string; vhost?: string; frameMax?: number; channelMax?: number; heartbeat?: number } = {}): Promise<RawClient> {
    const c = await RawClient.open(port);
    c.write(PROTOCOL_HEADER);
    await c.waitMethod(0, MethodId.ConnectionStart);
    c.sendMethod(0, method('ConnectionStartOk', {
      clientProperties: { product: 'raw-test', capabilities: { authentication_failure_close: true, consumer_cancel_notify: true } },
      mechanism: 'PLAIN', response: Buffer.from(`\0${opts.user ?? 'guest'}\0${opts.password ?? 'guest'}`), locale: 'en_US',
    }));
    await c.waitMethod(0, MethodId.ConnectionTune);
    c.sendMethod(0, method('ConnectionTuneOk', { channelMax: opts.channelMax ?? 0, frameMax: opts.frameMax ?? 131072, heartbeat: opts.heartbeat ?? 0 }));
    c.sendMethod(0, method('ConnectionOpen', { virtualHost: opts.vhost ?? '/' }));
    await c.waitMethod(0, MethodId.ConnectionOpenOk);
    return c;
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  sendMethod(channel: number, m: Method): void {
    this.write(encodeMethodFrame(channel, m));
  }

  sendContent(channel: number, m: Method, props: BasicProperties, body: Buffer, frameMax = 131072): void {
    const w = new Writer(body.length + 4096);
    writeContent(w, channel, m, props, body, frameMax);
    this.write(w.take());
  }

  async openChannel(n: number): Promise<void> {
    this.sendMethod(n, method('ChannelOpen', {}));
    await this.waitMethod(n, MethodId.ChannelOpenOk);
  }

  /** The first frame (from index `from`) matching, waiting up to `ms`. */
  async waitFor(pred: (f: Recorded) => boolean, what: string, ms = 5000, from = 0): Promise<Recorded> {
    const until = Date.now() + ms;
    for (;;) {
      for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i]!)) return this.frames[i]!;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames.map(describe))}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  async waitMethod(channel: number, id: number, ms = 5000): Promise<Method> {
    const f = await this.waitFor((x) => x.t === 'method' && x.channel === channel && x.m.id === id, `method 0x${id.toString(16)} on channel ${channel}`, ms);
    return (f as { m: Method }).m;
  }

  /** connection.close (or channel.close on `channel`) from the server: its reply code and text. */
  async closeFrom(channel: number, ms = 5000): Promise<{ replyCode: number; replyText: string; classId: number; methodId: number }> {
    const id = channel === 0 ? MethodId.ConnectionClose : MethodId.ChannelClose;
    return (await this.waitMethod(channel, id, ms)) as unknown as { replyCode: number; replyText: string; classId: number; methodId: number };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function describe(f: Recorded): string {
  if (f.t === 'method') return `${f.channel}:0x${f.m.id.toString(16)}`;
  return `${f.t}`;
}
