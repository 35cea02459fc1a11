import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * Holds a secret so that it cannot leak by accident: JSON, util.inspect, string conversion and pino
 * all see `[redacted]`. Only `reveal()` gives the value, at the moment a library needs it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
