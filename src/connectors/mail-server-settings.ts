import type { Secret } from '../domain/secret.js';
import type { TlsSettings } from './tls.js';

/** Everything a mail-server connector needs. The password stays wrapped until a library needs it. */
export interface MailServerSettings {
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  secure: boolean;
  username: string;
  /** Absent with OAuth2 (XOAUTH2), where `tokens` gives an access token before every login. */
  password?: Secret;
  tls: TlsSettings;
  timeouts: { connectMs: number; commandMs: number };
  /** MSB_PARSE_MAX_BYTES: bytes of a message read to build its parsed detail. */
  parseMaxBytes: number;
}
