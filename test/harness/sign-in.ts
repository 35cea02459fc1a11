// Drives the fake identity provider's sign-in over plain HTTP, as a browser would without scripts:
// GET the authorization URL, post the login form, post the consent form, and return the redirect
// that the provider sends the browser to (the service's OAuth2 redirect endpoint, with code or error).
import { request } from 'node:https';

interface Answer {
  status: number;
  location?: string;
  body: string;
}

function send(url: string, caPem: string, form?: URLSearchParams): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = form?.toString();
    const req = request(
      url,
      {
        method: form ? 'POST' : 'GET',
        ca: caPem,
        headers: form ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body!) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The action and hidden fields of the first form of a page. */
function readForm(page: string, base: string): { action: string; fields: URLSearchParams } {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(page);
  if (!form) throw new Error(`no form on the page: ${page.slice(0, 300)}`);
  const fields = new URLSearchParams();
  for (const m of form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields.set(m[1]!, m[2]!);
  return { action: new URL(form[1]!, base).toString(), fields };
}

export interface SignInOptions {
  caPem: string;
  username: string;
  password: string;
  /** "accept" (default) grants consent; "deny" presses Cancel (the provider answers access_denied). */
  decision?: 'accept' | 'deny';
}

/** Signs in at the fake identity provider and returns the URL it redirects the browser to. */
export async function signInOverHttp(authorizationUrl: string, options: SignInOptions): Promise<string> {
  const login = await send(authorizationUrl, options.caPem);
  if (login.status !== 200) throw new Error(`authorize page answered ${login.status}: ${login.body.slice(0, 300)}`);
  const loginForm = readForm(login.body, authorizationUrl);
  loginForm.fields.set('username', options.username);
  loginForm.fields.set('password', options.password);
  const consent = await send(loginForm.action, options.caPem, loginForm.fields);
  if (!/Permissions requested/.test(consent.body)) throw new Error(`login refused: ${consent.body.slice(0, 300)}`);
  const consentForm = readForm(consent.body, authorizationUrl);
  consentForm.fields.set('decision', options.decision ?? 'accept');
  const done = await send(consentForm.action, options.caPem, consentForm.fields);
  if (done.status !== 302 || !done.location) throw new Error(`consent answered ${done.status}: ${done.body.slice(0, 300)}`);
  return done.location;
}
