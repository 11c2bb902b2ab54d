export { AgentSession, type SessionState } from './session/session.js';
export { AppliedStore } from './state/applied-store.js';
export { planApply, validateDesiredSlot, type AppliedSlot } from './state/apply-plan.js';
