// The promise machine's statuses as SQL needs them. Kept here rather than imported: the machine
// module (src/machines/promise-machine.ts, `PROMISE_STATUSES`) imports XState, which this layer
// must not load; a test checks that these lists and the machine's agree.

/** Statuses of a promise that will still change. */
export const UNFINISHED_STATUSES = ['waiting', 'pending', 'in_progress'] as const;

/** Statuses of a promise that is done. */
export const FINISHED_STATUSES = ['completed', 'failed'] as const;
