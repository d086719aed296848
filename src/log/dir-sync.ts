/**
 * fsync of a directory: makes file creations, renames and deletions in it
 * durable. Without it a crash may bring back a deleted segment or lose a new one.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
