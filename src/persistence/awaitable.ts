import type { Awaitable } from './store.js';

/**
 * `next(value)`, synchronously when `value` is not a promise. Why: SQLite answers synchronously,
 * and a store written once for both dialects must not make every SQLite call cost a microtask.
 * (Not named `then`: a module exporting `then` is a thenable, and `await import()` of it calls it.)
 */
export function andThen<T, U>(value: Awaitable<T>, next: (value: T) => Awaitable<U>): Awaitable<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
