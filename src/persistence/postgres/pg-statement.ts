import type { PreparedQuery } from '../prepared.js';

/** What pg's `client.query` takes for a named prepared statement. */
export interface PgQueryConfig {
  name: string;
  text: string;
  values: unknown[];
}

class Slot {
  constructor(readonly name: string) {}
}

let statementCounter = 0;

/**
 * A shared {@link PreparedQuery} adapted to PostgreSQL's extended protocol.
 *
 * Why: PostgreSQL infers each parameter's type from where it first appears, and some of the
 * shared statements use a parameter where nothing says its type (`$1 is null`, `case when … then
 * $2 else null end` whose other arm is null, a bare `$3` in a select list). So every occurrence of
 * one named argument becomes one `$n`, cast to the type of the value bound (text, int8, float8,
 * text[]); a null is cast to int8, which PostgreSQL also assigns to a text column. Each distinct
 * combination of types is its own named statement, parsed once per connection and then only
 * bound and executed.
 */
export class PgStatement<Args> {
  readonly #query: PreparedQuery<Args>;
  /** Per argument position of the shared statement: the index of our deduplicated parameter. */
  readonly #positions: number[];
  /** Our parameters: a named argument, or a constant Kysely bound itself. */
  readonly #parameters: Array<{ name: string } | { constant: unknown }>;
  readonly #variants = new Map<string, { name: string; text: string }>();
  readonly #id = ++statementCounter;

  constructor(query: PreparedQuery<Args>) {
    this.#query = query;
    // Binding a proxy reveals which named argument fills each positional slot.
    const probe = query.bind(new Proxy({}, { get: (_target, key) => (typeof key === 'string' ? new Slot(key) : undefined) }) as Args);
    const byName = new Map<string, number>();
    this.#parameters = [];
    this.#positions = probe.map((value) => {
      if (value instanceof Slot) {
        let index = byName.get(value.name);
        if (index === undefined) {
          index = this.#parameters.push({ name: value.name }) - 1;
          byName.set(value.name, index);
        }
        return index;
      }
      return this.#parameters.push({ constant: value }) - 1;
    });
  }

  /** The statement for `args`: its values, and the text (cast per value type) under a stable name. */
  config(args: Args): PgQueryConfig {
    const record = args as Record<string, unknown>;
    const values = this.#parameters.map((parameter) => normalise('name' in parameter ? record[parameter.name] : parameter.constant));
    const types = values.map(pgTypeOf);
    const key = types.join(',');
    let variant = this.#variants.get(key);
    if (!variant) {
      const text = this.#query.sql.replace(/\$(\d+)/g, (_match, position: string) => {
        const index = this.#positions[Number(position) - 1]!;
        return `$${index + 1}::${types[index]}`;
      });
      variant = { name: `promised_${this.#id}_${this.#variants.size}`, text };
      this.#variants.set(key, variant);
    }
    return { name: variant.name, text: variant.text, values };
  }
}

function normalise(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

function pgTypeOf(value: unknown): string {
  if (value === null) return 'int8';
  if (typeof value === 'string') return 'text';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int8' : 'float8';
  if (Array.isArray(value)) return 'text[]';
  throw new TypeError(`cannot bind a ${typeof value} to a PostgreSQL statement`);
}
