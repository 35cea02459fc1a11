import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ConfigSchema, loadConfig } from '../src/config.js';

// docker-compose.replicas.yml, checked as far as it can be without a Docker engine: its shape, that every
// replica is configured the way "Running more than one replica" says (the same Redis, key and secret, its
// own address), that the settings are real ones and valid together, and that the README's command is the
// file's own.

const file = await readFile(new URL('../docker-compose.replicas.yml', import.meta.url), 'utf8');
// the replica section lives in docs/replicas.md (linked from the README)
const readme = await readFile(new URL('../docs/replicas.md', import.meta.url), 'utf8');
const compose = parse(file, { merge: true }) as {
  services: Record<string, { build?: string; image?: string; ports?: string[]; environment?: Record<string, string>; command?: string[]; depends_on?: string[] }>;
  volumes?: Record<string, unknown>;
};
const brokers = Object.entries(compose.services).filter(([, s]) => s.build === '.');

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?message}, from `env`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, op: string | undefined, rest: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (op === '?') throw new Error(`${name} must be set: ${rest}`);
    return op === '-' ? (rest ?? '') : '';
  });
}

test('two replicas built from this repository, Redis with a password and an append-only file, the GreenMail test server', () => {
  assert.deepEqual(brokers.map(([name]) => name).sort(), ['broker-1', 'broker-2']);
  assert.ok(compose.services.redis?.image?.startsWith('redis:7'), 'Redis 7, as the tests');
  const command = compose.services.redis!.command!;
  assert.equal(command[command.indexOf('--appendonly') + 1], 'yes');
  assert.equal(command[command.indexOf('--requirepass') + 1], '${MSB_REDIS_PASSWORD:?set MSB_REDIS_PASSWORD}');
  assert.ok(compose.services.greenmail?.image?.startsWith('greenmail/standalone:'));
  assert.ok(compose.volumes && 'redis-data' in compose.volumes);
  const published = brokers.map(([, s]) => s.ports![0]!);
  assert.deepEqual(published, ['127.0.0.1:3001:3000', '127.0.0.1:3002:3000'], 'each replica on its own port of this machine only');
});

test('every replica: the same Redis, key and secret, its own address, only real settings, valid together', () => {
  const env = { MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'), MSB_REPLICA_SECRET: randomBytes(32).toString('base64'), MSB_REDIS_PASSWORD: 'p4ss' };
  const shared = ['MSB_REDIS_URL', 'MSB_SESSION_STORE_KEY', 'MSB_REPLICA_SECRET', 'MSB_AUTH', 'MSB_API_KEYS'];
  const [first, second] = brokers.map(([, s]) => s.environment!);
  for (const name of shared) assert.equal(first![name], second![name], `${name} is the same on both replicas`);
  for (const [service, s] of brokers) {
    const environment = s.environment!;
    for (const name of Object.keys(environment)) {
      if (name.startsWith('MSB_') || name === 'LOG_LEVEL') assert.ok(name in ConfigSchema.properties, `${service}: ${name} is a setting of the service`);
    }
    assert.equal(environment.MSB_REPLICA_URL, `http://${service}:3000`, `${service} advertises its own service name`);
    assert.deepEqual([...(s.depends_on ?? [])].sort(), ['greenmail', 'redis']);
    const resolved = Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, interpolate(String(v), env)]));
    const redisUrl = new URL(resolved.MSB_REDIS_URL!);
    assert.equal(redisUrl.hostname, 'redis', 'the Redis service of this file');
    assert.equal(redisUrl.password, env.MSB_REDIS_PASSWORD, 'the password Redis requires');
    // the image sets HOST and PORT; the rest must make a valid configuration
    const config = loadConfig({ ...resolved, HOST: '0.0.0.0', PORT: '3000' });
    assert.equal(config.MSB_REPLICA_URL, `http://${service}:3000`);
  }
  // without the secrets compose refuses to start, rather than run with made-up ones
  assert.throws(() => interpolate(String(first!.MSB_SESSION_STORE_KEY), {}), /MSB_SESSION_STORE_KEY must be set/);
});

test('the README runs it with the command the file documents, setting every variable the file requires', () => {
  const command = 'docker compose -f docker-compose.replicas.yml up --build';
  assert.ok(readme.includes(command), 'docs/replicas.md shows the command');
  assert.ok(file.includes(command), 'the file\'s header shows the same command');
  const required = new Set([...file.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((m) => m[1]!));
  assert.deepEqual([...required].sort(), ['MSB_REDIS_PASSWORD', 'MSB_REPLICA_SECRET', 'MSB_SESSION_STORE_KEY']);
  const block = readme.slice(readme.indexOf('## Running more than one replica'));
  const line = block.slice(0, block.indexOf(command) + command.length);
  const shown = line.slice(line.lastIndexOf('```sh'));
  for (const name of required) assert.match(shown, new RegExp(`${name}="\\$\\(openssl rand`), `the README's command sets ${name}`);
});
