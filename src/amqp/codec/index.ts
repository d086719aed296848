/** The AMQP 0-9-1 codec: constants, field tables, methods, content properties, frames. */
export * from './constants.js';
export * from './field-table.js';
export * from './methods.js';
export * from './properties.js';
export * from './frames.js';
export { Writer } from './writer.js';
