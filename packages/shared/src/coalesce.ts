// A pass that anyone may ask for at any time (a reconcile, a read of new log lines): one runs at a time, and asked
// for while one runs, exactly one more follows it — bursts of requests coalesce, and none is answered by a pass that
// started before it was asked.

export function coalesced(pass: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await pass();
      } while (again);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
}
