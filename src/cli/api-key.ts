// Makes a new API key: prints the key (give it to the bot) and the MSB_API_KEYS entry (give it to the server).
// Usage: npm run api-key -- <principal> <bot|admin>     (in the image: node dist/cli/api-key.js <principal> <role>)
// Built with the service (dist/cli/api-key.js), so it needs neither tsx nor any dev dependency.
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../security/api-keys.js';

const [principal, role = 'bot'] = process.argv.slice(2);
if (!principal || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(principal) || !['bot', 'admin'].includes(role)) {
  process.stderr.write('usage: npm run api-key -- <principal> <bot|admin>   (or: node dist/cli/api-key.js <principal> <bot|admin>)\n');
  process.exit(2);
}
const key = `msb_${randomBytes(32).toString('base64url')}`;
process.stdout.write(`API key (shown once, give it to the bot): ${key}\nMSB_API_KEYS entry: ${principal}:${role}:${hashApiKey(key)}\n`);
