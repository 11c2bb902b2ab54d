// slot-agent: one per mail host. Exit codes: 0 clean stop, 1 refused to start (message says why), 2 usage.
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SLOTCTL_VERSION, DAEMON_NICE, parseNice, setOwnNice, watchLoopLag, ConfigError, assertName, createLogger, describeError, isUserError, parseDuration } from '@slotctl/shared';
import { SlotLogs, ensureSyslog, keepSyslog } from './logs/slot-logs.js';
import { MachineSlots } from './machine/slots.js';
import { AgentSession } from './session/session.js';
import { AppliedStore } from './state/applied-store.js';
import { ReplayStore } from './state/replay-store.js';
import { IpVipDriver } from './vip/ip.js';
import { AddressWatch } from './vip/address-watch.js';
import { LoopbackVipDriver } from './vip/loopback.js';
import { FenceGuard } from './fence/guard.js';
import { tuneArpRetransmit } from './vip/neighbour.js';
import { LeaseKeeper } from './lease/keeper.js';
import { PeerLink } from './peer/link.js';
import { cyrusOwner } from './slot/files.js';
import { withholdPromotions } from './peer/failsafe.js';
import { leaseMargin, monotonicMs } from './lease/lease.js';

/** How long after the lease ran out the agent stops masters itself, behind the fence process (2–3 of its ticks). */
const FENCE_BACKUP_DELAY_MS = 250;
import type { DesiredState__Output } from '@slotctl/shared';

function niceOption(value: string): number {
  try {
    return parseNice(value);
  } catch (err) {
    throw new InvalidArgumentError(describeError(err));
  }
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a TCP port`);
  return n;
}

const program = new Command('slot-agent')
  .description("The slotctl agent: runs this machine's Cyrus slots in the roles the coordinator's desired state gives them, and reports what it observes.")
  .version(SLOTCTL_VERSION)
  .addOption(new Option('--machine <name>', "this machine's name in the cluster").env('SLOTCTL_MACHINE').makeOptionMandatory())
  .addOption(new Option('--coordinator <host:port>', 'coordinator address').env('SLOTCTL_COORDINATOR').default('127.0.0.1:7400'))
  .addOption(new Option('--state-dir <dir>', 'where the agent keeps the epochs it applied').env('SLOTCTL_STATE_DIR').default('/var/lib/slotctl-agent'))
  .addOption(new Option('--auth <mode>', 'password check of the slots: sasldb (production) or test (any password; demo and tests only)').choices(['sasldb', 'test']).default('sasldb'))
  .addOption(new Option('--sync-user <name>', 'Cyrus admin used by replication').default('admin'))
  .addOption(new Option('--sync-password-file <file>', 'file holding the replication password (required with --auth sasldb)').env('SLOTCTL_SYNC_PASSWORD_FILE'))
  .addOption(new Option('--imap-port <port>', 'IMAP port on slot and service IPs (same on every agent)').argParser(port).default(1143))
  .addOption(new Option('--lmtp-port <port>', 'LMTP port on service IPs (same on every agent)').argParser(port).default(2003))
  .addOption(new Option('--sync-port <port>', 'replication port on replica slot IPs (same on every agent)').argParser(port).default(2005))
  .addOption(new Option('--peer-port <port>', "agent-to-agent port on each machine's address: failsafe confirmations (same on every agent)").argParser(port).default(7401))
  .addOption(new Option('--vip-driver <driver>', 'how slot and service IPs are taken: loopback (127.0.0.0/8, no ip calls) or ip (ip addr + arping)').choices(['loopback', 'ip']).default('loopback'))
  .addOption(new Option('--vip-interface <iface>', 'interface for --vip-driver ip').default('eth0'))
  .addOption(new Option('--arp-probe <duration>', 'how long arping -D listens for another owner before an address is taken').argParser((v) => parseDuration(v, '--arp-probe')).default(200, '200ms'))
  .addOption(new Option('--arp-retransmit <duration>', "with --vip-driver ip: how often the kernel repeats an unanswered ARP request on the interface (its default, 1 s, made renewals wait up to a second more after a link flap); 0 leaves the kernel's setting").argParser((v) => parseDuration(v, '--arp-retransmit')).default(250, '250ms'))
  .addOption(new Option('--syslog-dir <dir>', 'where Cyrus lines are filed per slot (by slot-syslogd when nothing owns /dev/log, else by rsyslog with deploy/rsyslog/30-slotctl.conf.template)').default('/run/slotctl/syslog'))
  .addOption(new Option('--syslog-socket <path>', 'the syslog socket Cyrus writes to').default('/dev/log'))
  .addOption(new Option('--stall-after <duration>', 'a backlog that does not move this long is reported stalled').argParser((v) => parseDuration(v, '--stall-after')).default(30_000, '30s'))
  .addOption(new Option('--ready-timeout <duration>', 'a started cyrmaster that does not greet on its slot IP this long is killed and started again (each further try waits one more timeout)').argParser((v) => parseDuration(v, '--ready-timeout')).default(15_000, '15s'))
  .addOption(new Option('--disk-report-interval <duration>', "how often each slot's partitions are measured (free space, bytes waiting for cleanup)").argParser((v) => parseDuration(v, '--disk-report-interval')).default(300_000, '5m'))
  .addOption(new Option('--reconcile-interval <duration>', "how often the slots' addresses on the interface are compared with what they must be (drift is repaired and raised as an event)").argParser((v) => parseDuration(v, '--reconcile-interval')).default(500, '500ms'))
  .option('--stop-slots-on-exit', 'stop every cyrmaster when the agent stops (default: leave them serving; a restarted agent re-adopts them)')
  .addOption(new Option('--nice <n>', 'scheduling priority of the agent and its fence (Cyrus runs at 0): leases must not wait behind the mail workload').argParser(niceOption).default(DAEMON_NICE))
  .addOption(new Option('--log-level <level>', 'pino log level').env('SLOTCTL_LOG_LEVEL').default('info'))
  .addHelpText('after', '\nLogs are JSON lines on stdout. SIGTERM/SIGINT stop gracefully; a second signal forces the exit.');

program.parse();
const opts = program.opts<{
  machine: string;
  coordinator: string;
  stateDir: string;
  auth: 'sasldb' | 'test';
  syncUser: string;
  syncPasswordFile?: string;
  imapPort: number;
  lmtpPort: number;
  syncPort: number;
  peerPort: number;
  syslogDir: string;
  syslogSocket: string;
  stopSlotsOnExit?: boolean;
  stallAfter: number;
  readyTimeout: number;
  diskReportInterval: number;
  reconcileInterval: number;
  vipDriver: 'loopback' | 'ip';
  vipInterface: string;
  arpProbe: number;
  arpRetransmit: number;
  logLevel: string;
  nice: number;
}>();
const log = createLogger('slot-agent', { level: opts.logLevel }).child({ machine: opts.machine });
// A failed side task (a report, a look at a directory) is a bug to fix, not a reason to stop supervising every slot
// of the machine: log it with its stack and keep running. (Seen: a sync log removed between stat and open.)
process.on('unhandledRejection', (err) => log.error({ err: err instanceof Error ? err.stack : String(err) }, 'unhandled promise rejection (a bug); the agent keeps running'));

function syncPassword(): string {
  if (!opts.syncPasswordFile) {
    if (opts.auth === 'test') return 'test-only';
    throw new ConfigError('--auth sasldb needs --sync-password-file', { hint: 'write the replication password to a file readable by root only and name it' });
  }
  try {
    return readFileSync(opts.syncPasswordFile, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`cannot read --sync-password-file ${opts.syncPasswordFile}: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  assertName(opts.machine, '--machine');
  setOwnNice(opts.nice, log);
  watchLoopLag({ log });
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  const applied = new AppliedStore(opts.stateDir, opts.machine);
  const persisted = await applied.load();
  const replays = new ReplayStore(opts.stateDir);
  await replays.load();
  const syslogdBin = fileURLToPath(new URL('../bin/slot-syslogd.js', import.meta.url));
  // The log collector is not worth a mail outage: one slow to come up (a loaded host at boot) is watched and started
  // again by keepSyslog, and the slots start meanwhile.
  const syslog = await ensureSyslog(opts.syslogDir, opts.syslogSocket, syslogdBin, log).catch((err: Error) => {
    log.error({ err: err.message, socket: opts.syslogSocket }, 'slot-syslogd is not answering yet: starting the slots anyway, their Cyrus lines are lost until it does');
    return 'ours' as const;
  });
  if (syslog === 'ours') keepSyslog(opts.syslogDir, opts.syslogSocket, syslogdBin, log);
  let session: AgentSession | undefined;
  // The fence process guards the masters from here on, independent of this process (SIGSTOP, a stuck loop).
  const guard = new FenceGuard({
    stateDir: opts.stateDir,
    bin: fileURLToPath(new URL('../bin/slot-fence.js', import.meta.url)),
    vip: { driver: opts.vipDriver, iface: opts.vipInterface },
    log,
  });
  // The lease runs on a thread of its own (lease/worker.ts): slot work on this thread cannot hold up its renewal,
  // nor the fence's view of it. It writes fence.json before the fence process starts.
  // declared before the lease keeper: a lease already lost at start (a restart after its deadline) calls back into
  // it before the slots exist (seen: a ReferenceError that killed a restarted agent)
  let slots: MachineSlots | undefined;
  const keeper: LeaseKeeper = new LeaseKeeper({
    machine: opts.machine,
    logLevel: opts.logLevel,
    path: guard.filePath,
    file: guard.initialFile,
    log,
    // the fence process kills the masters at the deadline (within its 100 ms tick) and records it; the agent does
    // the same a moment later in case that process is gone (well inside the margin before any promotion)
    lost: () => void setTimeout(() => (keeper.holds() ? undefined : void slots?.fence()), FENCE_BACKUP_DELAY_MS).unref(),
    regained: () => void slots?.resume(),
  });
  await keeper.start();
  await guard.start();
  const fenceWatch = setInterval(() => void guard.keepRunning().catch((err: Error) => log.error({ err: err.message }, 'could not start the fence process')), 5000);
  fenceWatch.unref();
  if (opts.vipDriver === 'ip') tuneArpRetransmit(opts.vipInterface, opts.arpRetransmit, log);
  // the interface's addresses as they change (ip monitor), so that reconciling them costs no process per look
  const addressWatch = opts.vipDriver === 'ip' ? new AddressWatch({ iface: opts.vipInterface, log, onChange: () => void slots?.reconcileNow().catch(() => undefined) }) : undefined;
  await addressWatch?.start();
  slots = new MachineSlots({
    runtime: {
      ports: { imap: opts.imapPort, lmtp: opts.lmtpPort, sync: opts.syncPort },
      auth: { mode: opts.auth, syncUser: opts.syncUser, syncPassword: syncPassword() },
      vip:
        opts.vipDriver === 'ip'
          ? new IpVipDriver({ iface: opts.vipInterface, probeMs: opts.arpProbe, log, watch: addressWatch })
          : new LoopbackVipDriver(),
      mayServeMaster: () => keeper.holds(),
      crashLimit: 5,
      crashWindowMs: 60_000,
      stopTimeoutMs: 10_000,
      readyTimeoutMs: opts.readyTimeout,
    },
    // Either slot-syslogd or the host's syslog daemon (with the slotctl rsyslog rule) writes DIR/SLOT.log.
    logs: new SlotLogs(opts.syslogDir),
    log,
    onChange: () => session?.reportSoon(),
    onEvent: (slot, kind, message) => session?.sendEvent(slot, kind, message),
    recentLogLines: 20,
    stallAfterMs: opts.stallAfter,
    diskReportIntervalMs: opts.diskReportInterval,
    replays,
    publishMasters: (masters) => keeper.publishMasters(masters),
    // peers exists long before any recovery asks
    targetGuids: (machine, slot, names) => peers.askGuids(machine, slot, names),
    targetUserSync: (machine, slot, users) => peers.askUserSync(machine, slot, users),
    owner: cyrusOwner,
  });
  const adopted = await slots.adopt(persisted);
  slots.startDiskReports();
  slots.startReconciling(opts.reconcileInterval);
  log.info({ coordinator: opts.coordinator, stateDir: opts.stateDir, slots: Object.keys(persisted).length, adopted, version: SLOTCTL_VERSION }, 'agent starting');
  // Partners: who holds the replicas of this machine's masters (their promises keep the masters up when the
  // coordinator is unreachable for everyone), and each slot's peer machine (a promise blocks promotions against it).
  let desired: DesiredState__Output | undefined;
  const peerMachine = (slot: string) => desired?.slots.find((d) => d.slot === slot)?.peerMachine || undefined;
  const machineSlots: MachineSlots = slots;
  const peers: PeerLink = new PeerLink({
    machine: opts.machine,
    port: opts.peerPort,
    intervalMs: 1000,
    promiseMs: () => (session?.state.phase === 'connected' ? session.state.leaseMs : 5000),
    marginMs: leaseMargin(5000),
    coordinatorReachable: () => session?.coordinatorReachable() ?? false,
    coordinatorGraceUntil: () => session?.coordinatorGraceUntil(),
    holds: () => keeper.holds(),
    replicaPartners: () => [...new Set((desired?.slots ?? []).filter((d) => d.role === 'MASTER' && d.peerMachine).map((d) => d.peerMachine))],
    onFailsafe: (deadline) => keeper.setFailsafe(deadline),
    partnerReachesCoordinator: () => session?.reconnectNow(),
    guids: (slot, names) => machineSlots.guidsOf(slot, names),
    syncUsers: (slot, users) => machineSlots.userSyncOn(slot, users),
    log,
  });
  peers.start();
  session = new AgentSession({
    machine: opts.machine,
    coordinator: opts.coordinator,
    applied,
    slots,
    log,
    lease: keeper,
    onDesired: (d) => {
      desired = d;
      peers.setPartners(d.peers);
      if (d.address) peers.listen(d.address).catch((err: Error) => log.error({ err: err.message, address: d.address, port: opts.peerPort }, 'cannot serve Peer: partners cannot confirm for this machine'));
    },
    withhold: (plan, previous) => withholdPromotions(plan, previous, peerMachine, peers.promises, monotonicMs()),
    peerViews: () => peers.views(),
    // fenced means a lease was held and ran out (masters stopped); an agent that has not had its first one yet is not
    fenced: () => keeper.remaining() !== undefined && !keeper.holds(),
  });
  const active = session;

  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal, stopSlots: !!opts.stopSlotsOnExit }, 'stopping');
    const force = setTimeout(() => {
      log.error('graceful stop took too long; exiting');
      process.exit(1);
    }, 30_000);
    force.unref();
    // The session goes first, so that no desired state arriving meanwhile starts a slot again.
    peers.stop();
    active
      .stop()
      .then(async () => {
        if (!opts.stopSlotsOnExit) return;
        await machineSlots.stopAll('agent stopping with --stop-slots-on-exit');
        // nothing left to guard
        clearInterval(fenceWatch);
        await keeper.publishMasters([]);
        guard.stopProcess();
      })
      .then(() => machineSlots.detachAll())
      .then(() => {
        log.info('agent stopped');
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  session.start();
}

main().catch((err: unknown) => {
  const message = describeError(err);
  log.fatal({ err: isUserError(err) ? undefined : err }, `cannot start: ${message}`);
  console.error(`slot-agent: cannot start: ${message}`);
  process.exit(1);
});
