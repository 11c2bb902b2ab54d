// Runs inside a namespace: connects to host:1143 every few milliseconds and prints, as JSON lines, each change
// between "answers * OK" and "does not". Used to time a service IP move.
//
// Each line carries the wall-clock time at which that attempt *started* (`at`): an attempt to an address nobody
// holds any more fails only at its connect timeout, and stamping it then would hide that much of an outage. A line
// that says `ok` also carries when the TCP handshake completed and when the greeting arrived (`connectedAt`,
// `greetedAt`): the end of an outage is the moment a client is greeted, not the moment its attempt began.
//
// The handshake gets 200 ms (an address nobody answers is retried at once, not after the kernel's 1 s SYN retry);
// once connected an attempt waits up to 2 s for `* OK`, as a patient client would. Giving up on the greeting after
// 200 ms, as this probe once did, timed a new imapd's start under load as an outage that lasted until one start
// happened to be quick, and every attempt given up made cyrmaster start yet another imapd.
//
// Its last line is a summary: how long the greeted attempts waited from their handshake to `* OK` (a new imapd's
// start, which every client pays, outage or not).
import net from 'node:net';

const [host, everyArg, forArg] = process.argv.slice(2);
const every = Number(everyArg ?? '10');
const until = Date.now() + Number(forArg ?? '30000');
const CONNECT_MS = 200;
const GREET_MS = 2000;

type Attempt = { ok: boolean; connectedAt?: number; greetedAt?: number };

function probe(): Promise<Attempt> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: host!, port: 1143 });
    let connectedAt: number | undefined;
    const done = (a: Attempt) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(a);
    };
    let timer = setTimeout(() => done({ ok: false }), CONNECT_MS);
    sock.on('connect', () => {
      connectedAt = Date.now();
      clearTimeout(timer);
      timer = setTimeout(() => done({ ok: false }), GREET_MS);
    });
    sock.on('data', (d) => (d.toString().startsWith('* OK') ? done({ ok: true, connectedAt, greetedAt: Date.now() }) : done({ ok: false })));
    sock.on('error', () => done({ ok: false }));
    sock.on('close', () => done({ ok: false }));
  });
}

let last: boolean | undefined;
/** connect → * OK of every greeted attempt: what a client waits for its greeting while the store serves. */
const greetMs: number[] = [];
while (Date.now() < until) {
  const at = Date.now();
  const a = await probe();
  if (a.ok) greetMs.push(a.greetedAt! - a.connectedAt!);
  if (a.ok !== last) {
    console.log(JSON.stringify({ at, ...a }));
    last = a.ok;
  }
  await new Promise((r) => setTimeout(r, every));
}
greetMs.sort((x, y) => x - y);
const pct = (p: number) => greetMs[Math.min(greetMs.length - 1, Math.floor((p / 100) * greetMs.length))];
console.log(JSON.stringify({ summary: { greeted: greetMs.length, greetP50Ms: pct(50), greetP99Ms: pct(99), greetMaxMs: greetMs.at(-1) } }));
