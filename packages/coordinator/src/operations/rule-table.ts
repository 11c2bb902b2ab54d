// Pure: how every operation's rule table is read — the first row leaving the operation's current step whose
// condition holds fires; its detail (the condition's sentence) goes into the event.
export interface TableRule<V> {
  from: string;
  when: (v: V) => string | undefined;
}

export function firstMatching<V extends { op: { step: string } }, R extends TableRule<V>>(rules: readonly R[], v: V): { rule: R; detail: string } | undefined {
  for (const rule of rules) {
    if (rule.from !== v.op.step) continue;
    const detail = rule.when(v);
    if (detail !== undefined) return { rule, detail };
  }
  return undefined;
}
