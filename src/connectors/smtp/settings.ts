import type { Recipient } from '../../domain/mail.js';
import type { Secret } from '../../domain/secret.js';
import type { TlsSettings } from '../tls.js';

/** What the SMTP side of an IMAP/POP3 session needs (the `smtp` object of its create body, with defaults applied). */
export interface SmtpSettings {
  host: string;
  port: number;
  /** Implicit TLS (465); else STARTTLS as `tls.starttls` says. */
  secure: boolean;
  tls: TlsSettings;
  username: string;
  /** Absent when the login uses the mailbox's OAuth2 token (XOAUTH2). */
  password?: Secret;
  /** The From of every message: `smtp.from`, else the user name when it is an address. */
  from: Recipient;
  /** APPEND a copy to the mailbox's \Sent folder after sending (IMAP only). */
  saveToSent: boolean;
  timeouts: { connectMs: number; commandMs: number };
  /** MSB_SEND_MAX_BYTES: a forward's own parts and the original's attachments together. */
  maxBytes: number;
}
