import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

test('defaults give a config that works on a developer machine (with authentication explicitly off)', () => {
  const config = loadConfig({ MSB_AUTH: 'none' });
  assert.equal(config.PORT, 3000);
  assert.equal(config.LOG_LEVEL, 'info');
  assert.equal(config.MSB_ALLOW_INSECURE_TLS, false, 'certificate verification cannot be turned off unless the server allows it');
});

test('without API keys the service listens on loopback unless HOST is set; with keys on every interface', () => {
  assert.equal(loadConfig({ MSB_AUTH: 'none' }).HOST, 'localhost');
  assert.equal(loadConfig({ MSB_AUTH: 'none', HOST: '0.0.0.0' }).HOST, '0.0.0.0');
  assert.equal(loadConfig({ MSB_API_KEYS: `bot-a:bot:${'0'.repeat(64)}` }).HOST, '0.0.0.0');
  assert.equal(loadConfig({ MSB_API_KEYS: `bot-a:bot:${'0'.repeat(64)}`, HOST: '10.0.0.5' }).HOST, '10.0.0.5');
});

test('MSB_AUTH=none with MSB_API_KEYS is refused, naming both: the keys would be ignored', () => {
  assert.throws(
    () => loadConfig({ MSB_AUTH: 'none', MSB_API_KEYS: `bot-a:bot:${'0'.repeat(64)}` }),
    (err: unknown) => err instanceof ConfigError && /MSB_AUTH=none/.test(err.message) && /MSB_API_KEYS/.test(err.message),
  );
});

test('a header deadline longer than the request deadline is refused', () => {
  assert.throws(() => loadConfig({ MSB_AUTH: 'none', MSB_HEADERS_TIMEOUT_MS: '20000', MSB_REQUEST_TIMEOUT_MS: '10000' }), /MSB_HEADERS_TIMEOUT_MS=20000.*MSB_REQUEST_TIMEOUT_MS=10000/);
});

test('values are converted from strings', () => {
  const config = loadConfig({ MSB_AUTH: 'none', PORT: '8080', MSB_ALLOW_INSECURE_TLS: 'false', LOG_LEVEL: 'debug' });
  assert.equal(config.PORT, 8080);
  assert.equal(config.MSB_ALLOW_INSECURE_TLS, false);
  assert.equal(config.LOG_LEVEL, 'debug');
});

test('a bad value fails fast and names the variable', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty' }), (err: unknown) => err instanceof ConfigError && /PORT="eighty"/.test(err.message));
  assert.throws(() => loadConfig({ MSB_MAX_SESSIONS: '0' }), /MSB_MAX_SESSIONS="0"/);
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL="loud"/);
});

test('API keys are required unless authentication is explicitly off; the message says how to make one', () => {
  assert.throws(() => loadConfig({}), /MSB_API_KEYS is empty while MSB_AUTH=keys.*node dist\/cli\/api-key\.js.*sha256sum/);
  assert.equal(loadConfig({ MSB_API_KEYS: `bot-a:bot:${'0'.repeat(64)}` }).MSB_AUTH, 'keys');
});
