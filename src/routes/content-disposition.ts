/**
 * A Content-Disposition header carrying a file name (RFC 6266): an ASCII `filename` for old clients and
 * `filename*` (RFC 8187, UTF-8) for the real name. Quotes, backslashes, path separators and control
 * characters never reach the header, whatever the mail said the name was.
 */
export function contentDisposition(type: 'inline' | 'attachment', filename: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = filename.replace(/[\u0000-\u001f\u007f/\\]+/g, '_').trim().slice(0, 255) || 'download';
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/["%]/g, '_');
  if (ascii === clean) return `${type}; filename="${ascii}"`;
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
