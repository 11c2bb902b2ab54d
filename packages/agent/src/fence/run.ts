// The fence process: independent of the agent's event loop (a hung or stopped agent cannot keep a master alive).
// Every 100 ms it reads fence.json; when the listed masters' deadline has passed it kills each master's process
// group (SIGKILL: no further write is acknowledged), all of them before anything that could wait, then releases their
// service IPs beside the ticks and records what it did in fenced.json. It acts again for a new deadline, or when a
// listed master runs again past its deadline. (A release once waited inline on an `ip` that never returned — a
// frozen host in the soak — and no later deadline was enforced.)
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { writeFileAtomic, type Logger } from '@slotctl/shared/base';
import { monotonicMs } from '../lease/lease.js';
import { isSlotMaster, pidAlive, signalGroup } from '../slot/process.js';
import { IpVipDriver } from '../vip/ip.js';
import { bootId, fenceDue, fencePaths, readFenceFile, type FenceFile, type FencedRecord } from './fence-file.js';

const TICK_MS = 100;
/** How long a stopping fence waits for the address releases under way (two bounded `ip` runs per master). */
const STOP_WAIT_MS = 15_000;

function masterPid(pidFile: string, imapdConf: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 && pidAlive(pid) && isSlotMaster(pid, imapdConf) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Kills every listed master's process group first, before anything that could wait: signals only, no process spawned,
 * so nothing here can hang. What was killed, by slot.
 */
function killMasters(file: FenceFile, log: Logger): Map<string, number | undefined> {
  const killed = new Map<string, number | undefined>();
  for (const m of file.masters) {
    const pid = masterPid(m.pidFile, m.imapdConf);
    try {
      if (pid) signalGroup(pid, 'SIGKILL');
    } catch (err) {
      // one master that cannot be signalled (EPERM) must not spare the others
      log.error({ slot: m.slot, store: m.store, pid, err: (err as Error).message }, 'could not kill a master past its deadline');
    }
    killed.set(m.slot, pid);
  }
  return killed;
}

/** One enforcement: the file it enforced, what it killed, and when (monotonic and wall clock). */
interface Kill {
  file: FenceFile;
  killed: Map<string, number | undefined>;
  at: number;
  wallTime: string;
}

/** Then releases their service IPs (each `ip` bounded by vip/ip.ts) and says what was done, slot by slot. */
async function releaseAddresses({ file, killed, at, wallTime }: Kill, log: Logger): Promise<FencedRecord> {
  const driver = file.vip.driver === 'ip' ? new IpVipDriver({ iface: file.vip.iface, probeMs: 0, log }) : undefined;
  const slots: FencedRecord['slots'] = [];
  for (const m of file.masters) {
    let released = false;
    let error: string | undefined;
    try {
      if (driver && (await driver.isBound(m.serviceIp))) {
        await driver.unbind(m.serviceIp);
        released = true;
      }
    } catch (err) {
      error = (err as Error).message;
    }
    slots.push({ slot: m.slot, store: m.store, epoch: m.epoch, killed: killed.get(m.slot), released, ...(error ? { error } : {}) });
  }
  return { bootId: file.bootId, at, deadline: file.deadline, wallTime, slots };
}

export async function runFence(stateDir: string, log: Logger): Promise<void> {
  const paths = fencePaths(stateDir);
  const boot = bootId();
  let fencedDeadline: number | undefined | null = null; // the deadline last enforced (null: none yet)
  // Every PID killed for that deadline, by slot. A deadline can be enforced more than once (a master still dying
  // from the first SIGKILL on a busy host, or started again, is found running at the next tick); each record names
  // all of them, not only the last tick's (ci on ba76305: a second record said "killed: none" of masters it had killed).
  let killedForDeadline = new Map<string, number | undefined>();
  let lastGood: FenceFile | undefined;
  // Address releases run beside the ticks, one at a time: a release that waits (a slow `ip`, bounded all the same)
  // must never keep the next deadline's kill waiting. At most one more waits behind the running one, the latest
  // enforcement with every PID killed since folded in: ticks that kill again every 100 ms cannot pile releases up.
  let releasing = false;
  let queued: Kill | undefined;
  let idle: (() => void) | undefined;
  const release = () => {
    if (releasing) return;
    if (!queued) return idle?.();
    const next = queued;
    queued = undefined;
    releasing = true;
    void record(next).finally(() => {
      releasing = false;
      release();
    });
  };
  const tick = () => {
    if (stopping) return;
    try {
      // a state directory removed under it (a demo run again from scratch) leaves nothing to guard
      if (!existsSync(stateDir)) return stop();
      // a file that cannot be read (replaced, truncated by a full disk) does not end the guard: the deadline last
      // read still holds, so the masters it lists are killed at it unless a good file says otherwise
      const read = readFenceFile(paths.file, boot);
      if (read) lastGood = read;
      const file = read ?? lastGood;
      const now = monotonicMs();
      // its agent is gone, nothing it guards runs and no release is left to do: the job is done (an agent that starts
      // again starts its own fence)
      const running = () => file!.masters.some((m) => masterPid(m.pidFile, m.imapdConf) !== undefined);
      if (file && !pidAlive(file.agentPid) && !running() && !releasing && !queued) return stop();
      if (!fenceDue(file, now)) return;
      // again only for a new deadline, or when a listed master is found running past it
      const again = fencedDeadline !== file!.deadline || running();
      if (!again) return;
      if (fencedDeadline !== file!.deadline) killedForDeadline = new Map();
      for (const [slot, pid] of killMasters(file!, log)) if (pid || !killedForDeadline.get(slot)) killedForDeadline.set(slot, pid);
      const killed = new Map(killedForDeadline);
      fencedDeadline = file!.deadline;
      // a release still waiting is folded in: its masters' addresses and PIDs go into this one
      const waiting = queued;
      const masters = [...file!.masters, ...(waiting?.file.masters.filter((m) => !file!.masters.some((x) => x.slot === m.slot)) ?? [])];
      for (const [slot, pid] of waiting?.killed ?? []) if (pid && !killed.get(slot)) killed.set(slot, pid);
      queued = { file: { ...file!, masters }, killed, at: now, wallTime: new Date().toISOString() };
      release();
    } catch (err) {
      log.error({ err: (err as Error).stack }, 'fence tick failed (a bug); trying again');
    }
  };
  const record = async (kill: Kill) => {
    try {
      const done = await releaseAddresses(kill, log);
      // a master listed before it ever started (or already stopped by its agent) needs nothing: no record then
      if (!done.slots.some((x) => x.killed || x.released || x.error)) return;
      await writeFileAtomic(paths.fenced, `${JSON.stringify(done)}\n`, 0o600);
      const late = kill.file.deadline === undefined ? undefined : kill.at - kill.file.deadline;
      const failed = done.slots.filter((x) => x.error);
      const what = `${done.slots.length} master slot(s) killed and their service IPs released${failed.length ? ` except ${failed.length} (see the errors)` : ''}`;
      log[failed.length ? 'error' : 'warn']({ holder: kill.file.holder, lateMs: late, slots: done.slots }, `FENCED: lease deadline passed; ${what}`);
    } catch (err) {
      log.error({ err: (err as Error).stack }, 'fence record failed (a bug); the masters were killed all the same');
    }
  };
  const timer = setInterval(tick, TICK_MS);
  let stopping = false;
  // Stops ticking, lets the releases under way finish (each bounded: at most STOP_WAIT_MS in all), then exits.
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    const exit = () => {
      try {
        if (existsSync(paths.pid) && readFileSync(paths.pid, 'utf8').trim() === String(process.pid)) unlinkSync(paths.pid);
      } catch {
        // already gone
      }
      log.info('fence stopped');
      process.exit(0);
    };
    if (!releasing && !queued) return exit();
    log.info({ waitMs: STOP_WAIT_MS }, 'fence stopping once its address releases are done');
    setTimeout(exit, STOP_WAIT_MS).unref();
    idle = exit;
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await writeFileAtomic(paths.pid, `${process.pid}\n`, 0o644);
  log.info({ stateDir, tickMs: TICK_MS }, 'fence running');
  tick();
}
