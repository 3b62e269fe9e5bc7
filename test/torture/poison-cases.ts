// The hostile promises of the poison phase: what each handler does, and what must be stored.
// Shared by the worker (which runs them) and the driver (which checks what the database holds).

export interface PoisonCase {
  kind: string;
  /** What the handler does: throws an Error whose `message` is this value, throws this value itself, or returns. */
  does: { throwsErrorWithMessage: unknown } | { throwsValue: unknown } | { returnsPayloadText: true } | { returns: string };
  /** Extra payload fields (the `poison` mark makes the test trigger refuse the completion). */
  payload?: Record<string, unknown>;
  expected: { status: 'failed'; code: string; message: string | RegExp; attempts: number } | { status: 'completed'; result: unknown; attempts: number };
}

/** Text a database cannot store as it is: U+0000 (PostgreSQL refuses it), lone surrogates (no UTF-8 form). */
const RESULT_TEXT = 'nul \u0000, lone high \ud800, lone low \udc00, a pair \ud83d\ude00';

/** Retries of the `hostile` task: a retried unstorable failure is stored again, the same way. */
export const HOSTILE_RETRIES = 1;

export const poisonCases: PoisonCase[] = [
  {
    // A realistic one: the start of a zip file quoted in a parse error.
    kind: 'U+0000 in the message',
    does: { throwsErrorWithMessage: 'cannot parse body "PK\u0003\u0004\u0000\u0000\u0008\u0000"' },
    expected: { status: 'failed', code: 'HANDLER_ERROR', message: 'cannot parse body "PK\u0003\u0004\ufffd\ufffd\u0008\ufffd"', attempts: HOSTILE_RETRIES + 1 },
  },
  {
    kind: 'lone high surrogate in the message',
    does: { throwsErrorWithMessage: 'a title cut mid-emoji: caf\u00e9 \ud83d' },
    expected: { status: 'failed', code: 'HANDLER_ERROR', message: 'a title cut mid-emoji: caf\u00e9 \ufffd', attempts: HOSTILE_RETRIES + 1 },
  },
  {
    kind: 'lone low surrogate in the message',
    does: { throwsErrorWithMessage: '\ude00 starts with the second half of a pair' },
    expected: { status: 'failed', code: 'HANDLER_ERROR', message: '\ufffd starts with the second half of a pair', attempts: HOSTILE_RETRIES + 1 },
  },
  {
    kind: 'a thrown string with U+0000',
    does: { throwsValue: 'raw \u0000 string' },
    expected: { status: 'failed', code: 'HANDLER_ERROR', message: 'raw \ufffd string', attempts: HOSTILE_RETRIES + 1 },
  },
  {
    kind: 'an Error whose message is an object',
    does: { throwsErrorWithMessage: { reason: 'not a string', detail: { status: 502, body: 'a\u0000b' } } },
    expected: { status: 'failed', code: 'HANDLER_ERROR', message: '{"reason":"not a string","detail":{"status":502,"body":"a\\u0000b"}}', attempts: HOSTILE_RETRIES + 1 },
  },
  {
    kind: 'an Error whose message is an object that cannot be JSON-encoded',
    does: {
      throwsErrorWithMessage: {
        toJSON() {
          throw new Error('not serialisable');
        },
      },
    },
    expected: { status: 'failed', code: 'HANDLER_ERROR', message: '[object Object]', attempts: HOSTILE_RETRIES + 1 },
  },
  {
    kind: 'U+0000 and lone surrogates in the payload and the result',
    does: { returnsPayloadText: true },
    payload: { text: RESULT_TEXT },
    expected: { status: 'completed', result: RESULT_TEXT, attempts: 1 },
  },
  {
    // The database refuses this completion (the trigger): failed alone, at once, not retried.
    kind: 'a completion the database refuses',
    does: { returns: 'fine' },
    payload: { mark: 'poison' },
    expected: { status: 'failed', code: 'OUTCOME_NOT_STORABLE', message: /value refused by the database/, attempts: 1 },
  },
];
