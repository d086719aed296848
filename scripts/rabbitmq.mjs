#!/usr/bin/env node
// A private RabbitMQ for benchmarks and manual checks, from Debian's
// `rabbitmq-server` package, reachable on loopback only, leaving nothing
// behind when stopped. It never installs anything and never touches the
// system service (/etc/rabbitmq, /var/lib/rabbitmq, port 5672, epmd on 4369).
//
//   node scripts/rabbitmq.mjs run     start, print the URL, stay in the
//                                     foreground; stop and clean up on
//                                     SIGTERM/SIGINT/SIGHUP or when stdin
//                                     closes (so a parent that dies takes it
//                                     down). `ringmq bench amqp --compare
//                                     rabbitmq` uses this mode.
//   node scripts/rabbitmq.mjs start   start in the background, print the URL
//                                     on stdout and how to stop it on stderr
//   node scripts/rabbitmq.mjs stop DIR    stop the node started with the state
//                                     directory DIR (or $RINGMQ_RABBITMQ_DIR)
//
// The one stdout line is `listening on amqp://guest:guest@127.0.0.1:PORT`.
// RINGMQ_RABBITMQ_SERVER overrides the start script's path (default: Debian's
// /usr/lib/rabbitmq/bin/rabbitmq-server).
// Exit codes: 0 ok, 1 failure (the node's log tail is printed), 2 usage,
// 3 rabbitmq-server is not installed (the message says how to install it).
//
// What makes it private and loopback-only (everything lives in one mkdtemp
// directory, removed at stop):
// - AMQP:          listeners.tcp.default = 127.0.0.1:<free port>; no plugins
//                  (a private enabled_plugins file holding `[].`), so no
//                  management, prometheus or other listeners.
// - distribution:  RABBITMQ_DIST_PORT=<free port>, bound to 127.0.0.1
//                  (-kernel inet_dist_use_interface).
// - epmd:          our own, started by this script bound to 127.0.0.1 on a
//                  free port (ERL_EPMD_ADDRESS, ERL_EPMD_PORT); erl is told
//                  not to start one (-start_epmd false), so nothing binds
//                  4369 and a system epmd (if any) is not used.
// - Erlang cookie: HOME is the temp dir, holding a fresh random
//                  .erlang.cookie (mode 0400).
// - files:         RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE,
//                  RABBITMQ_CONFIG_FILE, RABBITMQ_ADVANCED_CONFIG_FILE,
//                  RABBITMQ_ENABLED_PLUGINS_FILE, RABBITMQ_CONF_ENV_FILE,
//                  RABBITMQ_PID_FILE all point into the temp dir; every
//                  RABBITMQ_* and ERL_* variable of the caller is dropped.
// Debian's /usr/sbin/rabbitmq-server is a wrapper that `su`s to the rabbitmq
// user (dropping this environment) when run as root, so the script runs
// /usr/lib/rabbitmq/bin/rabbitmq-server directly, as the calling user.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';

const INSTALL_HINT =
  'rabbitmq-server is not installed. Install Debian\'s package:\n' +
  '    sudo apt-get install rabbitmq-server\n' +
  'This script runs its own private node; the system service the package starts is not needed\n' +
  '(`sudo systemctl disable --now rabbitmq-server` stops it).';

/** Where Debian's package keeps the real start script (not the su wrapper in /usr/sbin). */
const SERVER_CANDIDATES = ['/usr/lib/rabbitmq/bin/rabbitmq-server'];
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;

const log = (line) => process.stderr.write(`rabbitmq.mjs: ${line}\n`);

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function findInstall() {
  const server = process.env.RINGMQ_RABBITMQ_SERVER ?? SERVER_CANDIDATES.find((p) => existsSync(p));
  const epmd = which('epmd');
  if (!server || !existsSync(server) || !epmd || !which('erl')) return undefined;
  return { server, epmd };
}

/** A port free on 127.0.0.1 right now (the kernel's pick; a start that loses a race is retried). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Resolves true once `port` answers the AMQP 0-9-1 protocol header with a
 * connection.start method frame (type 1, channel 0, class 10, method 10).
 */
function speaksAmqp(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 11) done(got[0] === 1 && got.readUInt16BE(1) === 0 && got.readUInt16BE(7) === 10 && got.readUInt16BE(9) === 10);
    });
    sock.on('end', () => done(false));
  });
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

/** Signals a process group (children were started with detached: true, so pid = pgid). */
function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitGone(pid, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await sleep(100);
  }
  return !alive(pid);
}

function logTail(dir, lines = 40) {
  const out = [];
  for (const f of ['stdout.log', 'log/node.log']) {
    const p = join(dir, f);
    if (!existsSync(p)) continue;
    const text = readFileSync(p, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    if (text) out.push(`--- ${f} (last ${lines} lines) ---\n${text}`);
  }
  return out.join('\n');
}

/** Stops the node and epmd recorded in dir/state.json and removes dir. */
async function stopDir(dir) {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) throw new Error(`${dir} holds no state.json: not a directory made by this script`);
  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  // SIGTERM to the start script: it traps it and stops the VM gracefully
  // (the VM gets SIGTERM too, which RabbitMQ also handles as a clean stop).
  if (state.serverPid) {
    killGroup(state.serverPid, 'SIGTERM');
    if (!(await waitGone(state.serverPid, STOP_TIMEOUT_MS))) {
      log(`node did not stop within ${STOP_TIMEOUT_MS / 1000}s; SIGKILL`);
      killGroup(state.serverPid, 'SIGKILL');
      await waitGone(state.serverPid, 5000);
    }
    // The VM's helpers (erl_child_setup, inet_gethost) share its group.
    killGroup(state.serverPid, 'SIGKILL');
  }
  if (state.epmdPid) {
    killGroup(state.epmdPid, 'SIGTERM');
    if (!(await waitGone(state.epmdPid, 5000))) killGroup(state.epmdPid, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}

async function startOnce(install, detach) {
  const dir = mkdtempSync(join(os.tmpdir(), 'ringmq-rabbitmq-'));
  const state = { dir, serverPid: 0, epmdPid: 0, port: 0, url: '' };
  try {
    const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
    if (new Set([port, distPort, epmdPort]).size !== 3) throw Object.assign(new Error('port clash'), { retry: true });
    const home = join(dir, 'home');
    mkdirSync(home);
    mkdirSync(join(dir, 'log'));
    writeFileSync(join(home, '.erlang.cookie'), randomBytes(24).toString('hex').toUpperCase(), { mode: 0o400 });
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '# empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n');
    writeFileSync(
      join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = 127.0.0.1:${port}`,
        'loopback_users.guest = true',
        'log.console = false',
        'log.file.level = info',
        '',
      ].join('\n'),
    );
    const nodename = `ringmq-bench-${process.pid}-${randomBytes(3).toString('hex')}@localhost`;
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RABBITMQ_') && !k.startsWith('ERL_')));
    Object.assign(env, {
      HOME: home,
      RABBITMQ_NODENAME: nodename,
      RABBITMQ_USE_LONGNAME: 'false',
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_LOGS: join(dir, 'log/node.log'),
      RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false',
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_EPMD_PORT: String(epmdPort),
    });

    const epmd = spawn(install.epmd, ['-address', '127.0.0.1', '-port', String(epmdPort)], {
      cwd: dir,
      env,
      detached: true,
      stdio: 'ignore',
    });
    state.epmdPid = epmd.pid;
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
    // epmd listening is the first thing the VM needs.
    const epmdUntil = Date.now() + 10_000;
    while (!(await new Promise((r) => net.connect({ host: '127.0.0.1', port: epmdPort }).on('connect', function () { this.destroy(); r(true); }).on('error', () => r(false))))) {
      if (!alive(epmd.pid) || Date.now() > epmdUntil) throw Object.assign(new Error(`epmd did not listen on 127.0.0.1:${epmdPort}`), { retry: true });
      await sleep(50);
    }

    const outFd = openSync(join(dir, 'stdout.log'), 'a');
    const server = spawn(install.server, [], { cwd: dir, env, detached: true, stdio: ['ignore', outFd, outFd] });
    closeSync(outFd);
    state.serverPid = server.pid;
    state.port = port;
    state.url = `amqp://guest:guest@127.0.0.1:${port}`;
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
    let exited = false;
    server.on('exit', () => { exited = true; });

    const until = Date.now() + START_TIMEOUT_MS;
    while (!(await speaksAmqp(port))) {
      if (exited || !alive(server.pid)) {
        const tail = logTail(dir);
        const clash = /eaddrinuse|already in use/i.test(tail);
        throw Object.assign(new Error(`rabbitmq-server exited before accepting AMQP\n${tail}`), { retry: clash });
      }
      if (Date.now() > until) throw new Error(`rabbitmq-server did not accept AMQP on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000}s\n${logTail(dir)}`);
      await sleep(250);
    }
    if (detach) {
      epmd.unref();
      server.unref();
    }
    return { state, server, epmd };
  } catch (err) {
    await stopDir(dir).catch(() => rmSync(dir, { recursive: true, force: true }));
    throw err;
  }
}

async function start(detach) {
  const install = findInstall();
  if (!install) {
    process.stderr.write(`${INSTALL_HINT}\n`);
    process.exit(3);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(install, detach);
    } catch (err) {
      if (!err.retry || attempt >= 3) throw err;
      log(`${err.message.split('\n')[0]}; retrying with other ports`);
    }
  }
}

async function main(argv) {
  const [cmd, arg] = argv;
  switch (cmd) {
    case 'run': {
      const { state, server } = await start(false);
      let stopping = false;
      const stop = async (why) => {
        if (stopping) return;
        stopping = true;
        log(`stopping (${why})`);
        await stopDir(state.dir);
        process.exit(0);
      };
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => void stop(sig));
      process.stdin.on('end', () => void stop('stdin closed'));
      process.stdin.on('error', () => void stop('stdin error'));
      process.stdin.resume();
      server.on('exit', (code, signal) => {
        if (stopping) return;
        stopping = true;
        log(`rabbitmq-server exited unexpectedly (${code ?? signal})\n${logTail(state.dir)}`);
        void stopDir(state.dir).finally(() => process.exit(1));
      });
      process.stdout.write(`listening on ${state.url}\n`);
      log(`node data and logs in ${state.dir}`);
      return;
    }
    case 'start': {
      const { state } = await start(true);
      process.stdout.write(`listening on ${state.url}\n`);
      log(`stop it with: node scripts/rabbitmq.mjs stop ${state.dir}`);
      process.exit(0);
      return;
    }
    case 'stop': {
      const dir = arg ?? process.env.RINGMQ_RABBITMQ_DIR;
      if (!dir) {
        process.stderr.write('usage: node scripts/rabbitmq.mjs stop DIR (the directory `start` printed)\n');
        process.exit(2);
      }
      await stopDir(dir);
      log(`stopped; removed ${dir}`);
      return;
    }
    default:
      process.stderr.write('usage: node scripts/rabbitmq.mjs run | start | stop DIR\n');
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err) => {
  log(err.message);
  process.exit(1);
});
