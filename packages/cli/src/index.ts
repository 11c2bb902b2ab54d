// @slotctl/cli as a library: the Admin client, for tools and tests that talk to a coordinator without starting
// slotctl. Importing it loads no command (main.ts is what bin/slotctl.js runs).
export { Admin, DEFAULT_COORDINATOR } from './admin-client.js';
