/** The small HTML page a person sees after signing in, and the headers that keep it inert. */

export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  // nothing but the inline style may load or run; the page cannot be framed or post anywhere
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // the callback URL carries the authorization code: never send it onward
  'referrer-policy': 'no-referrer',
};

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export interface PageContent {
  ok: boolean;
  title: string;
  message: string;
  /** Shown as "code: ..." for a failure, so a person can tell support what happened. */
  code?: string;
}

/** Renders the page; every value is escaped, whatever the identity provider or the caller put in it. */
export function renderCallbackPage(content: PageContent): string {
  const title = escapeHtml(content.title);
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${title}</title>`,
    '<style>body{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:38rem;padding:0 1rem;color:#1b1b1b}',
    'h1{font-size:1.4rem}.ok{color:#0a6b2d}.fail{color:#a61b1b}code{background:#f2f2f2;padding:0 .25rem}</style>',
    '</head><body>',
    `<h1 class="${content.ok ? 'ok' : 'fail'}">${title}</h1>`,
    `<p>${escapeHtml(content.message)}</p>`,
    content.code ? `<p>Code: <code>${escapeHtml(content.code)}</code></p>` : '',
    '<p>You can close this window.</p>',
    '</body></html>',
  ].join('');
}

/** Whether the caller asked for JSON rather than the page (a bot or a test following the redirect). */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.search(/application\/(problem\+)?json/);
  const html = accept.search(/text\/html/);
  return json >= 0 && (html < 0 || json < html);
}
