#!/usr/bin/env node
// The `ringmq` command. The CLI is compiled TypeScript (npm ci builds it).
import { existsSync } from 'node:fs';
const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('ringmq: not built yet (dist/ is missing); run `npm ci` or `npm run build` first');
  process.exit(2);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
