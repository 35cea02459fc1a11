import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The one configuration schema. Every key is the environment variable that sets it, so the README table,
 * the defaults and the validation cannot drift apart.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'HTTP port to listen on.' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Interface to listen on (all by default).' }),
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info', description: 'pino level of the service log.' }),
  MSB_MAIL_LOG_LEVEL: Type.Enum(LOG_LEVELS, {
    default: 'warn',
    description: 'pino level of the mail libraries (imapflow protocol traces at debug/trace; credentials are never logged).',
  }),
  MSB_BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 65_536, description: 'Largest accepted request body.' }),
  MSB_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300_000, default: 15_000, description: 'Default time allowed to connect, greet, upgrade TLS and log in.' }),
  MSB_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000, description: 'Default time allowed for one mail command.' }),
  MSB_SUMMARY_MAX_AGE_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 5_000, description: 'Inspect answers from the mailbox summary cached this long; older ones are refreshed live (0 = always live).' }),
  MSB_MAX_SESSIONS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000, description: 'Most sessions the pool holds.' }),
  MSB_ALLOW_INSECURE_TLS: Type.Boolean({ default: true, description: 'Whether a session may turn certificate verification off (tls.verifyCertificate=false). Set false in production.' }),
  MSB_SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: 'How long a graceful shutdown may take before the process exits anyway.' }),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads, converts and validates the configuration from an environment; throws a ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(ConfigSchema.properties) as [string, TSchema][]) {
    const text = env[key];
    if (text === undefined || text === '') continue;
    raw[key] = Value.Convert(schema, text.trim());
  }
  const withDefaults = Value.Default(ConfigSchema, raw);
  if (Value.Check(ConfigSchema, withDefaults)) return withDefaults;
  const problems = Value.Errors(ConfigSchema, withDefaults).map((e) => {
    const key = e.instancePath.replace(/^\//, '');
    return `${key}=${JSON.stringify(env[key] ?? '')}: ${e.message}`;
  });
  throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
}
