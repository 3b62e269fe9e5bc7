import { TimeoutError } from '../errors.js';
import type { TaskContext, TaskDefinition } from './task-context.js';

/**
 * Runs one attempt: the handler against its abort signal and timeout. Settles as soon as the
 * signal aborts, even if the handler ignores it, so a cancelled or timed-out promise frees its
 * slot at once; the abandoned handler's outcome is discarded.
 */
export async function runHandler(task: TaskDefinition, payload: unknown, ctx: TaskContext, controller: AbortController): Promise<unknown> {
  const { timeout } = task.options;
  const timer =
    timeout === null
      ? undefined
      : setTimeout(() => controller.abort(new TimeoutError(`promise ${ctx.id} (${ctx.type}) ran longer than its timeout of ${timeout} ms`)), timeout);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(controller.signal.reason);
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([Promise.resolve().then(() => task.handler(payload, ctx)), aborted]);
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) controller.signal.removeEventListener('abort', onAbort);
    aborted.catch(() => undefined);
  }
}
