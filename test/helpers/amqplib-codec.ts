/**
 * amqplib's own encoder and decoder (lib/defs.js, lib/codec.js), used as the
 * reference implementation in cross-checks. The package's `exports` map hides
 * lib/, so it is loaded by absolute path.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('amqplib'));

export interface AmqplibMethodInfo {
  id: number;
  name: string;
  args: { name: string; type: string }[];
}

export interface AmqplibDefs {
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
  decode(id: number, buf: Buffer): Record<string, unknown>;
  info(id: number): AmqplibMethodInfo;
  BasicProperties: number;
  [name: string]: unknown;
}

export interface AmqplibCodec {
  encodeTable(buf: Buffer, val: Record<string, unknown>, offset: number): number;
  decodeFields(slice: Buffer): Record<string, unknown>;
}

export const defs = require(join(root, 'lib/defs.js')) as AmqplibDefs;
export const codec = require(join(root, 'lib/codec.js')) as AmqplibCodec;

/** amqplib's id constant for a method type name ("BasicPublish"). */
export function amqplibId(typeName: string): number {
  const id = defs[typeName];
  if (typeof id !== 'number') throw new Error(`amqplib has no ${typeName}`);
  return id;
}
