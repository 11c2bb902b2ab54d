/** In a slot's check_mailboxes: summarize every mailbox the slot holds (the agent's ALL_MAILBOXES). */
export const ALL_MAILBOXES_CHECK = '*';
