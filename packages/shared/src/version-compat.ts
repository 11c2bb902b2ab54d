// Which agent versions a coordinator works with. A rolling upgrade goes coordinators first, then agents one machine
// at a time, so for a while the coordinator is one minor version ahead of some agents: it accepts its own minor and
// the one before (same major). Anything else (older by more than one minor, another major, newer than the
// coordinator, not a version at all) is refused at hello with a sentence that says which way to upgrade.

export interface Version {
  major: number;
  minor: number;
  patch: number;
}

const VERSION = /^(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:[-+][0-9A-Za-z.+-]{1,64})?$/;

export function parseVersion(text: string): Version | undefined {
  const m = VERSION.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

/** Undefined when the coordinator (of version `coordinator`) accepts an agent of version `agent`; else why not. */
export function agentVersionProblem(agent: string, coordinator: string): { reason: string; hint: string } | undefined {
  const c = parseVersion(coordinator);
  if (!c) throw new Error(`the coordinator's own version "${coordinator}" is not X.Y.Z (a build defect)`);
  // quoted and cut: the text comes from a peer not yet trusted with anything else
  const shown = JSON.stringify(agent.slice(0, 40));
  const a = parseVersion(agent);
  if (!a) return { reason: `agent version ${shown} is not a version (X.Y.Z)`, hint: 'install a released slotctl package on this machine' };
  const pair = `agent ${agent} and coordinator ${coordinator}`;
  if (a.major !== c.major) {
    return a.major < c.major
      ? { reason: `${pair}: another major version`, hint: `upgrade the agent to ${c.major}.${c.minor} (or ${c.major}.${Math.max(0, c.minor - 1)})` }
      : { reason: `${pair}: the agent is of a newer major version`, hint: 'upgrade the coordinators first, then the agents' };
  }
  if (a.minor > c.minor) return { reason: `${pair}: the agent is newer than the coordinator`, hint: 'upgrade the coordinators first, then the agents one machine at a time' };
  if (a.minor < c.minor - 1) {
    return { reason: `${pair}: the agent is more than one minor version behind`, hint: `upgrade the agent to ${c.major}.${c.minor}; a coordinator works with agents of its own minor version and the one before` };
  }
  return undefined;
}
