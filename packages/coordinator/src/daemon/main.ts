// slot-coordinator: the coordinator daemon. Exit codes: 0 clean stop, 1 refused to start (message says why).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ObserveServer, SLOTCTL_VERSION, DAEMON_NICE, TLS_FLAG_HELP, type TlsFlags, certificatesFromFlags, configFileHelp, configureOrExit, parseListen, parseNice, setOwnNice, watchLoopLag, createLogger, describeError, isUserError, parseDuration, leaseTimingProblem } from '@slotctl/shared';
import { Coordinator } from '../coordinator.js';
import { sqliteBackend } from '../db/backend.js';
import { CoordinatorServer } from '../grpc/server.js';
import { HaCoordinator } from '../ha/run.js';
import { etcdClientFromFlags, type EtcdFlags } from './etcd-flags.js';
import { CoordinatorSystemd, coordinatorStatus } from './systemd.js';
import { registerStateCommands } from './state-cli.js';
import { CoordinatorObserver } from '../observe/observer.js';
import { coordinatorRoutes } from '../observe/http.js';
import { DEFAULT_LEASE_MS } from '../liveness/rules.js';

function duration(what: string) {
  return (value: string) => {
    try {
      return parseDuration(value, what);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  };
}

/** HOST:PORT, or "off" (no HTTP endpoints): the check ObserveServer makes, made before anything starts. */
function wholeAtLeastOne(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of at least 1');
  return n;
}

function httpListen(value: string): string {
  if (value === 'off') return value;
  try {
    parseListen(value, '--http-listen');
    return value;
  } catch (err) {
    throw new InvalidArgumentError(describeError(err));
  }
}

/** How the options are written in --config FILE (the rest is each long flag in snake_case). */
const CONFIG_KEYS = { lists: ['etcdEndpoints'] };

// Defaults from the environment go through Option.env(), not `process.env.X ?? default`: commander then knows which
// of the two a value came from, and a --config file can sit between them (flag > environment > file > default).
const program: Command = new Command('slot-coordinator')
  .description('The slotctl coordinator: keeps the cluster database, watches agent liveness and serves slotctl.')
  .version(SLOTCTL_VERSION)
  .addOption(new Option('--config <file>', 'YAML file with any of the options below (e.g. /etc/slotctl/coordinator.yaml); no file is read unless named').env('SLOTCTL_CONFIG'))
  .addOption(new Option('--listen <host:port>', 'gRPC address for agents and slotctl').env('SLOTCTL_LISTEN').default('127.0.0.1:7400'))
  .addOption(new Option('--store <backend>', 'where the cluster state lives: sqlite (one coordinator, the default) or etcd (several coordinators, one leader)').choices(['sqlite', 'etcd']).env('SLOTCTL_STORE').default('sqlite'))
  .addOption(new Option('--data-dir <dir>', 'directory for the database (--store sqlite)').env('SLOTCTL_DATA_DIR').default('/var/lib/slotctl'))
  .option('--db <file>', 'SQLite database file (default: DATA_DIR/coordinator.db)')
  .addOption(new Option('--etcd-endpoints <urls>', 'etcd members, comma-separated (https://10.0.0.1:2379,…); http:// only with --insecure').env('SLOTCTL_ETCD_ENDPOINTS'))
  .addOption(new Option('--etcd-prefix <key>', 'the key prefix of this cluster in etcd (several clusters can share one etcd)').env('SLOTCTL_ETCD_PREFIX').default('/slotctl'))
  .addOption(new Option('--etcd-ca <file>', "the etcd CA, which etcd members' certificates are checked against (default: etcd-ca.crt in --tls-dir)").env('SLOTCTL_ETCD_CA'))
  .addOption(new Option('--etcd-cert <file>', 'the etcd-client certificate shown to etcd (default: the one etcd-client-*.crt in --tls-dir; never this coordinator\'s own, which etcd refuses)').env('SLOTCTL_ETCD_CERT'))
  .addOption(new Option('--etcd-key <file>', 'its private key, mode 0600 (with --etcd-cert)').env('SLOTCTL_ETCD_KEY'))
  .option('--leader-lease <duration>', "the leader's etcd lease (whole seconds, at least 2 s): a dead leader is replaced about this long after it stopped renewing it; a leader that could not renew it in time (etcd unreachable — or electing a leader of its own, 1–2 s with etcd's defaults: hence not less than 5 s by default) renews no agent lease and stops leading", duration('--leader-lease'), 5000)
  .addOption(new Option('--http-listen <host:port>', 'HTTP endpoints (mutual TLS, reader role): /metrics, /livez, /readyz, /leader and the live status page at /; "off" for none').env('SLOTCTL_HTTP_LISTEN').argParser(httpListen).default('127.0.0.1:7480'))
  .addOption(new Option('--advertise <host:port>', 'where agents and slotctl reach this coordinator (--store etcd: followers point callers at the leader by it; default: --listen)').env('SLOTCTL_ADVERTISE'))
  .option('--heartbeat-interval <duration>', 'how often agents heartbeat', duration('--heartbeat-interval'), 1000)
  .option('--lease <duration>', "lease length: an agent that got no acknowledgement for this long (less a fifth) fences its masters; a machine silent for it plus a fifth is down and its stores fail over. Shorter than 5 s, it is lengthened to at most 5 s (up to 3 s more) while a machine's slots are starting (the start hold)", duration('--lease'), DEFAULT_LEASE_MS)
  .option('--max-switchovers <n>', 'switchovers past their preflight at once, cluster-wide; more wait in preflight', wholeAtLeastOne, 4)
  .option('--max-seeds <n>', 'full copies to a new replica (re-replication, replica moves) at once, cluster-wide; more wait in preflight', wholeAtLeastOne, 2)
  .option('--max-seeds-per-machine <n>', 'full copies at once that read from or write to one machine', wholeAtLeastOne, 1)
  .option('--max-auto-failover <n>', 'machines with masters down at once that still fail over automatically; more looks like a network problem and waits for slotctl machine failover --force', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number (0 turns automatic failover off)');
    return n;
  }, 1)
  .option('--nice <n>', 'scheduling priority: heartbeats are acknowledged ahead of any other work on this host', (v) => {
    try {
      return parseNice(v);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  }, DAEMON_NICE)
  .addOption(new Option('--tls-dir <dir>', `${TLS_FLAG_HELP.tlsDir} (one coordinator-HOST certificate)`).env('SLOTCTL_TLS_DIR'))
  .addOption(new Option('--tls-ca <file>', TLS_FLAG_HELP.tlsCa).env('SLOTCTL_TLS_CA'))
  .addOption(new Option('--tls-cert <file>', TLS_FLAG_HELP.tlsCert).env('SLOTCTL_TLS_CERT'))
  .addOption(new Option('--tls-key <file>', TLS_FLAG_HELP.tlsKey).env('SLOTCTL_TLS_KEY'))
  // SLOTCTL_INSECURE=1 only, applied by configureOrExit (commander's .env() would take any value, even 0, as yes)
  .option('--insecure', `${TLS_FLAG_HELP.insecure} (env: SLOTCTL_INSECURE=1)`, false)
  .addOption(new Option('--log-level <level>', 'pino log level').env('SLOTCTL_LOG_LEVEL').default('info'))
  .addHelpText(
    'after',
    (): string => `
${configFileHelp(program, CONFIG_KEYS)}

With --store etcd, run slot-coordinator on two or more hosts against the same etcd cluster: one is elected leader
(an etcd lease of --leader-lease) and does everything; the others answer every call with the leader's address, and
agents and slotctl (given every coordinator's address: --coordinator a:7400,b:7400,c:7400) follow it. A leader that
loses etcd stops acting before another can be elected; the new one reads the whole state from etcd and gives agents
one lease to reach it before it declares anything down.

etcd has a CA of its own (slotctl pki init makes it beside the cluster CA): its members trust only that CA, so no
agent's or operator's certificate gets into etcd. Each coordinator shows etcd an etcd-client certificate of that CA,
found in --tls-dir beside its own:
  slotctl pki issue etcd-client co1 --dir PKI-DIR --out /etc/slotctl/tls    (etcd-client-co1.crt/.key, etcd-ca.crt)
It is read at start: after a renewal, restart the coordinators one at a time.

Logs are JSON lines on stdout. SIGTERM/SIGINT stop gracefully (a leader hands over at once); a second signal forces the exit.`,
  );

registerStateCommands(program);
// the file applies to the subcommands too (export, import, backup read --store, --data-dir, --etcd-*)
program.hook('preAction', () => configureOrExit('slot-coordinator', program, { ...CONFIG_KEYS, file: program.opts<{ config?: string }>().config, strictBooleanEnv: { insecure: 'SLOTCTL_INSECURE' } }));
program.action(() => daemon(program.opts<DaemonOptions>()));
await program.parseAsync();

type DaemonOptions = TlsFlags & EtcdFlags & { listen: string; httpListen: string; store: 'sqlite' | 'etcd'; dataDir: string; db?: string; heartbeatInterval: number; lease: number; maxSwitchovers: number; maxSeeds: number; maxSeedsPerMachine: number; maxAutoFailover: number; logLevel: string; nice: number; leaderLease: number; advertise?: string };

async function daemon(opts: DaemonOptions): Promise<void> {
  const log = createLogger('slot-coordinator', { level: opts.logLevel });
  setOwnNice(opts.nice, log);
  watchLoopLag({ log });

  const timingProblem = leaseTimingProblem(opts.lease, opts.heartbeatInterval);
  if (timingProblem) {
    console.error(`slot-coordinator: --lease ${opts.lease} ms with --heartbeat-interval ${opts.heartbeatInterval} ms: ${timingProblem}; shorten the interval or lengthen the lease (see BENCHMARKS.md, lease)`);
    process.exit(2);
  }

  let certificates: ReturnType<typeof certificatesFromFlags>;
  try {
    certificates = certificatesFromFlags(opts, { roles: ['coordinator'] }, {
      onReload: (id, notAfter) => log.info({ identity: id, notAfter }, 'renewed certificate taken for new connections'),
      onError: (err) => log.error({ err: describeError(err) }, 'renewed certificate files refused; the old ones stay in use'),
    });
  } catch (err) {
    console.error(`slot-coordinator: cannot start: ${describeError(err)}`);
    process.exit(1);
  }

  const observer = new CoordinatorObserver();
  const config = { observer, certificates: certificates?.files, heartbeatIntervalMs: opts.heartbeatInterval, leaseMs: opts.lease, maxSwitchovers: opts.maxSwitchovers, maxSeeds: opts.maxSeeds, maxSeedsPerMachine: opts.maxSeedsPerMachine, maxAutoFailover: opts.maxAutoFailover };
  const server = new CoordinatorServer(opts.advertise ?? opts.listen, certificates?.files);
  const web = coordinatorRoutes({ observer, leadership: () => server.leadership, store: opts.store, log });
  const http = opts.httpListen === 'off' ? undefined : new ObserveServer({ certificates: certificates?.files, routes: web.routes, log, program: 'slot-coordinator' });
  let stopAll: () => Promise<void> = async () => undefined;
  // the HTTP endpoints go last: a load balancer sees the coordinator ready until it stopped
  const stopHttp = async () => {
    web.stream.close();
    await http?.close();
  };
  const listenHttp = async () => {
    await http?.listen(opts.httpListen).catch((err: Error) => {
      throw new Error(`cannot serve HTTP on ${opts.httpListen} (--http-listen): ${err.message}`);
    });
  };

  async function start(): Promise<void> {
    if (opts.store === 'sqlite') {
      const backend = sqliteBackend(opts.db ?? join(opts.dataDir, 'coordinator.db'), log);
      try {
        await server.listen(opts.listen);
      } catch (err) {
        backend.close();
        throw new Error(`cannot listen on ${opts.listen}: ${(err as Error).message}`);
      }
      try {
        await listenHttp();
      } catch (err) {
        backend.close();
        await server.close();
        throw err;
      }
      const coordinator = new Coordinator(config, log);
      coordinator.start(backend, server);
      stopAll = async () => {
        await coordinator.stop({ flush: true });
        await server.close();
        await stopHttp();
      };
      return;
    }
    if (opts.leaderLease % 1000 !== 0 || opts.leaderLease < 2000) throw new InvalidArgumentError(`--leader-lease must be whole seconds, at least 2 s (etcd leases count in seconds): got ${opts.leaderLease} ms`);
    const advertise = opts.advertise ?? opts.listen;
    if (/^(0\.0\.0\.0|\[::\]):/.test(advertise)) throw new InvalidArgumentError(`--listen ${opts.listen} is every address: give --advertise HOST:PORT, where the others reach this coordinator`);
    const client = etcdClientFromFlags(opts);
    await server.listen(opts.listen).catch((err: Error) => {
      client.close();
      throw new Error(`cannot listen on ${opts.listen}: ${err.message}`);
    });
    await listenHttp().catch(async (err: unknown) => {
      await server.close();
      client.close();
      throw err;
    });
    const ha = new HaCoordinator({ client, prefix: opts.etcdPrefix, server, config, me: { id: randomUUID(), address: advertise }, ttlSeconds: opts.leaderLease / 1000, log });
    ha.start();
    log.info({ etcd: opts.etcdEndpoints, prefix: opts.etcdPrefix, advertise }, 'coordinator up: following or leading through etcd');
    stopAll = async () => {
      await ha.stop();
      await server.close();
      client.close();
      await stopHttp();
    };
  }

  const systemd = new CoordinatorSystemd(log); // Type=notify
  let signals = 0;
  const shutdown = (signal: string) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    systemd.stopping(signal);
    stopAll().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    await start();
    systemd.ready(() => coordinatorStatus(opts.listen, opts.store, server.leadership));
  } catch (err) {
    const message = describeError(err);
    log.fatal({ err: isUserError(err) ? undefined : err }, `cannot start: ${message}`);
    console.error(`slot-coordinator: cannot start: ${message}`);
    process.exit(1);
  }
}
