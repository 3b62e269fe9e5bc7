import { TimeoutError } from '../errors.js';
import type { TaskContext, TaskDefinition } from './task-context.js';

/** One attempt of a handler, as the claim runner follows it. */
export interface HandlerRun {
  /** Settles with the handler's result or throw, or as soon as the signal aborts (timeout, cancel, lease lost). */
  readonly outcome: Promise<unknown>;
  /** Settles (never rejects) when the handler's own code has returned or thrown, however long after an abort. */
  readonly body: Promise<void>;
  /** True once `body` settled. */
  readonly bodyDone: () => boolean;
}

/**
 * Runs one attempt: the handler against its abort signal and timeout. The outcome is known as
 * soon as the signal aborts, even if the handler ignores it; the body is followed on its own,
 * because a body that runs on still uses what concurrency bounds (its slot is held until it
 * returns).
 */
export function runHandler(task: TaskDefinition, payload: unknown, ctx: TaskContext, controller: AbortController): HandlerRun {
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
  aborted.catch(() => undefined);
  const running = Promise.resolve().then(() => task.handler(payload, ctx));
  let done = false;
  // Registered on `running` before the race below, so `done` is already true when the outcome settles because the body did.
  const body = running.then(
    () => void (done = true),
    () => void (done = true),
  );
  const outcome = Promise.race([running, aborted]).finally(() => {
    if (timer) clearTimeout(timer);
    if (onAbort) controller.signal.removeEventListener('abort', onAbort);
  });
  return { outcome, body, bodyDone: () => done };
}
