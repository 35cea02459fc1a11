import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashApiKey } from '../../src/security/api-keys.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';

const USER = 'vault@example.test';
const PASSWORD = 'Vault-Resolved-9d2c41';
const OUTSIDE = 'Outside-Secret-77ab03';
const KEY_A = 'secret-test-key-bot-a-000000000';
const KEY_B = 'secret-test-key-bot-b-000000000';
const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe('credential references ({"secret": "name"})', () => {
  let dovecot: DovecotServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    dovecot = await startDovecot({ users: { [USER]: PASSWORD } });
    const root = await mkdtemp(path.join(os.tmpdir(), 'msb-secrets-'));
    dir = path.join(root, 'secrets');
    await mkdir(dir);
    await writeFile(path.join(dir, 'bot-a.imap-password'), `${PASSWORD}\n`); // trailing newline as Docker writes it
    await writeFile(path.join(dir, 'bot-a.imap-user'), USER);
    await writeFile(path.join(root, 'outside'), OUTSIDE);
    await symlink(path.join(root, 'outside'), path.join(dir, 'bot-a.escape'));
    // a Kubernetes secret volume: name -> ..data/name, ..data -> a timestamped directory (swapped on updates)
    await mkdir(path.join(dir, '..2026_11_30_10_00_00.123456789'));
    await writeFile(path.join(dir, '..2026_11_30_10_00_00.123456789', 'bot-a.k8s-password'), PASSWORD);
    await symlink('..2026_11_30_10_00_00.123456789', path.join(dir, '..data'));
    await symlink(path.join('..data', 'bot-a.k8s-password'), path.join(dir, 'bot-a.k8s-password'));
    // a link through ..data that leads out again, and one to a directory
    await symlink(path.join('..data', '..', '..', 'outside'), path.join(dir, 'bot-a.k8s-escape'));
    await symlink('..data', path.join(dir, 'bot-a.k8s-dir'));
    env = {
      MSB_AUTH: 'keys',
      MSB_API_KEYS: `bot-a:bot:${hashApiKey(KEY_A)},bot-b:bot:${hashApiKey(KEY_B)}`,
      MSB_SECRETS_DIR: dir,
      MSB_SECRET_ACCESS: 'bot-a=bot-a.*|shared-*;bot-b=shared-*',
    };
  });
  after(async () => {
    await dovecot?.close();
    await rm(path.dirname(dir), { recursive: true, force: true });
  });
  const body = (name: string, username: unknown, password: unknown) => ({
    name, type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username, password, tls: { ca: dovecot.caPem },
  });

  test('a file secret and an environment secret connect; the values appear nowhere', async (t) => {
    const { app, logs } = await build(t, env, { MSB_SECRET_SHARED_PASSWORD: PASSWORD });
    const fromFile = await app.inject({
      method: 'POST', url: '/v1/sessions', headers: as(KEY_A),
      payload: body('vault', { secret: 'bot-a.imap-user' }, { secret: 'bot-a.imap-password' }),
    });
    assert.equal(fromFile.statusCode, 201, fromFile.body);
    assert.equal(fromFile.json().username, 'secret:bot-a.imap-user');
    const fromEnv = await app.inject({ method: 'POST', url: '/v1/sessions', headers: as(KEY_B), payload: body('vault', USER, { secret: 'shared-password' }) });
    assert.equal(fromEnv.statusCode, 201, fromEnv.body);
    // the same reference again is the same settings
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', headers: as(KEY_B), payload: body('vault', USER, { secret: 'shared-password' }) })).statusCode, 200);
    const list = await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEY_A) });
    await app.close();
    for (const text of [fromFile.body, fromEnv.body, list.body, ...logs]) {
      assert.equal(text.includes(PASSWORD), false, `a resolved secret leaked: ${text.slice(0, 200)}`);
      assert.equal(text.includes(KEY_A) || text.includes(KEY_B), false, 'an API key leaked');
    }
  });

  test('a Kubernetes secret volume (links into ..data/) is read', async (t) => {
    const { app } = await build(t, env);
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', headers: as(KEY_A), payload: body('k8s', USER, { secret: 'bot-a.k8s-password' }) });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.body.includes(PASSWORD), false);
  });

  test('missing, not allowed and escaping secrets all answer SECRET_UNAVAILABLE without connecting', async (t) => {
    const { app } = await build(t, env);
    const cases: [string, unknown][] = [
      [KEY_A, { secret: 'bot-a.nothing-here' }],
      [KEY_B, { secret: 'bot-a.imap-password' }], // exists, but bot-b may not read it
      [KEY_A, { secret: 'bot-a.escape' }], // a symlink out of the directory
      [KEY_A, { secret: 'bot-a.k8s-escape' }], // through ..data and out again
      [KEY_A, { secret: 'bot-a.k8s-dir' }], // a link to a directory, not a file
      [KEY_A, { secret: 'shared-password' }], // allowed, but not in this process's environment
    ];
    for (const [key, ref] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', headers: as(key), payload: body('nope', USER, ref) });
      const problem = assertProblem(res, 'SECRET_UNAVAILABLE');
      assert.doesNotMatch(String(problem.detail), new RegExp(`${PASSWORD}|${OUTSIDE}`));
    }
    for (const name of ['../outside', '..', '.hidden', 'a/b', '/etc/passwd', '']) {
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', headers: as(KEY_A), payload: body('nope', USER, { secret: name }) });
      assertProblem(res, 'VALIDATION_ERROR');
    }
  });
});
