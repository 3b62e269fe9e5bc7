import type { ResolvedTaskOptions } from './options.js';

/**
 * Delay before the next attempt, after `attempts` attempts have failed.
 * Exponential: `retryDelay · 2^(attempts-1)`, capped; both kinds get "equal jitter" (half fixed,
 * half random) so a burst of failures does not retry in lockstep.
 */
export function retryDelayMs(options: ResolvedTaskOptions, attempts: number, random: () => number = Math.random): number {
  const base = options.backoff === 'exponential' ? options.retryDelay * 2 ** Math.max(0, attempts - 1) : options.retryDelay;
  const capped = Math.min(base, options.maxRetryDelay);
  return Math.round(capped / 2 + (capped / 2) * random());
}
