/** setTimeout's ceiling: a longer delay fires at once, so every timer is clamped to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay clamped into what setTimeout honours: never negative, never past its ceiling. */
export function timerDelay(ms: number): number {
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}
