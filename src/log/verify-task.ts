/**
 * piscina task: read one sealed segment file and scan it (scan.ts). Stateless,
 * one task per segment, so recovery verifies sealed segments in parallel.
 * Started by recovery.ts via `new URL('./verify-task.js', import.meta.url)`.
 */
import { scanFile, type ScanResult } from './scan.js';

export interface VerifyTask {
  path: string;
  baseSeq: number;
}

export default function verifySegment(task: VerifyTask): ScanResult {
  return scanFile(task.path, task.baseSeq);
}
