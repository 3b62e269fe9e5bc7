import type { Statement } from '../statement.js';

/** What pg's `client.query` takes for a named prepared statement. */
export interface PgQueryConfig {
  name: string;
  text: string;
  values: unknown[];
}

let statementCounter = 0;

/**
 * A compiled {@link Statement} adapted to PostgreSQL's extended protocol.
 *
 * Why: PostgreSQL infers each parameter's type from where it first appears, and some of the
 * shared statements use a parameter where nothing says its type (`$1 is null`, `case when … then
 * $2 else null end` whose other arm is null, a bare `$3` in a select list). So every occurrence of
 * one named argument becomes one `$n`, cast to the type of the value bound (text, int8, float8,
 * int8[] or text[]); a null is cast to int8, which PostgreSQL also assigns to a text column. Each
 * distinct combination of types is its own named statement, parsed once per connection and then
 * only bound and executed.
 */
export class PgStatement<Args> {
  readonly #statement: Statement<Args>;
  /** Per positional slot of the shared statement: the index of our deduplicated parameter. */
  readonly #positions: number[];
  /** Per parameter of ours: the first slot of the shared statement that holds it. */
  readonly #firstSlots: number[] = [];
  readonly #variants = new Map<string, { name: string; text: string }>();
  readonly #id = ++statementCounter;

  constructor(statement: Statement<Args>) {
    this.#statement = statement;
    const byName = new Map<string, number>();
    this.#positions = statement.slots.map((slot, position) => {
      if (typeof slot !== 'string') return this.#firstSlots.push(position) - 1;
      let index = byName.get(slot);
      if (index === undefined) {
        index = this.#firstSlots.push(position) - 1;
        byName.set(slot, index);
      }
      return index;
    });
  }

  /** The statement for `args`: its values, and the text (cast per value type) under a stable name. */
  config(args: Args): PgQueryConfig {
    const bound = this.#statement.bind(args);
    const values = this.#firstSlots.map((position) => bound[position]);
    const types = values.map(pgTypeOf);
    const key = types.join(',');
    let variant = this.#variants.get(key);
    if (!variant) {
      const text = this.#statement.sql.replace(/\$(\d+)/g, (_match, position: string) => {
        const index = this.#positions[Number(position) - 1]!;
        return `$${index + 1}::${types[index]}`;
      });
      variant = { name: `promised_${this.#id}_${this.#variants.size}`, text };
      this.#variants.set(key, variant);
    }
    return { name: variant.name, text: variant.text, values };
  }
}

function pgTypeOf(value: unknown): string {
  if (value === null) return 'int8';
  if (typeof value === 'string') return 'text';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int8' : 'float8';
  // A list of ids compares with integer columns; any other list (task types) is text.
  if (Array.isArray(value)) return value.length > 0 && value.every((item) => Number.isInteger(item)) ? 'int8[]' : 'text[]';
  throw new TypeError(`cannot bind a ${typeof value} to a PostgreSQL statement`);
}
