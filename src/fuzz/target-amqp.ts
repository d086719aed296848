import type { Target } from './target.js';
export class AmqpTarget implements Partial<Target> {
  constructor(_o: unknown) { throw new Error('not yet'); }
}
