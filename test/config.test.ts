import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, deprecatedVariables, loadConfig } from '../src/config.js';

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

test('one Microsoft app registration: the MSB_EWS_* and MSB_GRAPH_* names of earlier releases are read as aliases', () => {
  const none = { MSB_AUTH: 'none' };
  assert.equal(loadConfig({ ...none, MSB_EWS_CLIENT_ID: 'app-1' }).MSB_MICROSOFT_CLIENT_ID, 'app-1');
  assert.equal(loadConfig({ ...none, MSB_GRAPH_TENANT_ID: 'contoso.test' }).MSB_MICROSOFT_TENANT_ID, 'contoso.test');
  // the same value under both old names is one registration
  assert.equal(loadConfig({ ...none, MSB_EWS_CLIENT_SECRET: 's-1', MSB_GRAPH_CLIENT_SECRET: 's-1' }).MSB_MICROSOFT_CLIENT_SECRET, 's-1');
  // the current name wins
  assert.equal(loadConfig({ ...none, MSB_MICROSOFT_CLIENT_ID: 'new', MSB_GRAPH_CLIENT_ID: 'old' }).MSB_MICROSOFT_CLIENT_ID, 'new');
});

test('two old names with different values are refused without quoting them (one may be a secret)', () => {
  assert.throws(
    () => loadConfig({ MSB_AUTH: 'none', MSB_EWS_CLIENT_SECRET: 'Secret-Ews-1', MSB_GRAPH_CLIENT_SECRET: 'Secret-Graph-2' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /MSB_EWS_CLIENT_SECRET and MSB_GRAPH_CLIENT_SECRET differ/.test(err.message) &&
      /MSB_MICROSOFT_CLIENT_SECRET/.test(err.message) &&
      !/Secret-Ews-1|Secret-Graph-2/.test(err.message),
  );
});

test('the old trusted-host lists are joined, each one or its default, so every host trusted before still is', () => {
  const none = { MSB_AUTH: 'none' };
  assert.equal(loadConfig(none).MSB_MICROSOFT_TRUSTED_HOSTS, 'outlook.office365.com');
  assert.equal(loadConfig({ ...none, MSB_MAIL_OAUTH_TRUSTED_HOSTS: 'imap.example.test' }).MSB_MICROSOFT_TRUSTED_HOSTS, 'outlook.office365.com,imap.example.test');
  assert.equal(
    loadConfig({ ...none, MSB_EWS_TRUSTED_HOSTS: 'ews.example.test:8443', MSB_MAIL_OAUTH_TRUSTED_HOSTS: 'imap.example.test' }).MSB_MICROSOFT_TRUSTED_HOSTS,
    'ews.example.test:8443,imap.example.test',
  );
  assert.throws(() => loadConfig({ ...none, MSB_EWS_TRUSTED_HOSTS: 'not a host' }), /MSB_MICROSOFT_TRUSTED_HOSTS/);
});

test('each deprecated name set gets a warning that names its replacement', () => {
  assert.deepEqual(deprecatedVariables({ MSB_MICROSOFT_CLIENT_ID: 'x' }), []);
  assert.deepEqual(deprecatedVariables({ MSB_GRAPH_CLIENT_ID: 'x', MSB_EWS_TRUSTED_HOSTS: '' }), ['MSB_GRAPH_CLIENT_ID is deprecated: use MSB_MICROSOFT_CLIENT_ID']);
  assert.deepEqual(deprecatedVariables({ MSB_EWS_TENANT_ID: 't', MSB_MICROSOFT_TENANT_ID: 'u' }), ['MSB_EWS_TENANT_ID is deprecated and ignored: MSB_MICROSOFT_TENANT_ID is set']);
});
