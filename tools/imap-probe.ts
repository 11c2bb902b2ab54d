// Runs inside a namespace: connects to host:1143 every few milliseconds and prints, as JSON lines, each change
// between "answers * OK" and "does not" with the wall-clock time at which that attempt *started*: an attempt to an
// address nobody holds any more fails only at its 200 ms timeout, and stamping it then would hide that much of an
// outage. Used to time a service IP move.
import net from 'node:net';

const [host, everyArg, forArg] = process.argv.slice(2);
const every = Number(everyArg ?? '10');
const until = Date.now() + Number(forArg ?? '30000');
let last: boolean | undefined;

function probe(): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: host!, port: 1143 });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 200);
    sock.on('data', (d) => done(d.toString().startsWith('* OK')));
    sock.on('error', () => done(false));
  });
}

while (Date.now() < until) {
  const at = Date.now();
  const ok = await probe();
  if (ok !== last) {
    console.log(JSON.stringify({ at, ok }));
    last = ok;
  }
  await new Promise((r) => setTimeout(r, every));
}
