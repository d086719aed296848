import type { Parameters } from 'fast-check';

/**
 * fast-check run parameters for the project's properties. A failure prints
 * the seed and path; replay it with FC_SEED=<seed> FC_PATH=<path> npm test -- <file>.
 * FC_RUNS scales the number of runs (long local runs), e.g. FC_RUNS=1000.
 */
export function fcParams<T>(defaults: Parameters<T> = {}): Parameters<T> {
  const p: Parameters<T> = { ...defaults };
  if (process.env.FC_SEED) p.seed = Number(process.env.FC_SEED);
  if (process.env.FC_PATH) p.path = process.env.FC_PATH;
  if (process.env.FC_RUNS) p.numRuns = Number(process.env.FC_RUNS);
  return p;
}
