import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, waitForPort, waitForPortClosed } from './harness/ports.js';

const ROOT = new URL('..', import.meta.url).pathname;

/**
 * The npm scripts as an operator runs them, from a build like the image's: package.json, node_modules
 * and a fresh dist/ built from src/ (the committed dist/ may be stale or missing), nothing else.
 */
describe('npm scripts of a built service', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'msb-npm-'));
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.json'), '--outDir', join(dir, 'dist')], { stdio: 'inherit' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Processes whose command line runs the temporary build: what `npm start` left behind, if anything. */
  function leftovers(): number[] {
    return readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir) || readFileSync(`/proc/${p}/environ`, 'utf8').includes(`MSB_TEST_NPM_DIR=${dir}`);
        } catch {
          return false;
        }
      })
      .map(Number)
      .filter((pid) => pid !== process.pid);
  }

  test('npm start passes SIGTERM on: the service logs out and exits, nothing keeps running', { timeout: 90_000 }, async (t) => {
    const port = await freePort();
    const npm = spawn('npm', ['start'], {
      cwd: dir,
      env: { ...process.env, MSB_AUTH: 'none', HOST: '127.0.0.1', PORT: String(port), MSB_TEST_NPM_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // a service orphaned by npm is ended here, by its own pid, so that it cannot outlive the test
    t.after(() => leftovers().forEach((pid) => process.kill(pid, 'SIGKILL')));
    await waitForPort(port, '127.0.0.1', 30_000, 'the service started by npm start');
    const exited = once(npm, 'exit') as Promise<[number | null, string | null]>;
    npm.kill('SIGTERM');
    await exited;
    await waitForPortClosed(port, '127.0.0.1', 20_000, 'the service after npm got SIGTERM');
    assert.match(out, /shut down cleanly/, out);
    assert.deepEqual(leftovers(), [], 'no process of the service outlives npm');
  });

  test('npm run api-key works from the build alone and prints a key and its MSB_API_KEYS entry', () => {
    const out = execFileSync('npm', ['run', '--silent', 'api-key', '--', 'bot-a', 'bot'], { cwd: dir, encoding: 'utf8' });
    const key = /API key \(shown once, give it to the bot\): (\S+)/.exec(out)?.[1];
    const entry = /MSB_API_KEYS entry: (\S+)/.exec(out)?.[1];
    assert.ok(key && entry, out);
    assert.equal(entry, `bot-a:bot:${createHash('sha256').update(key).digest('hex')}`);
  });
});
