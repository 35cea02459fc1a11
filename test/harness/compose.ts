// Test messages as real MIME, built by nodemailer's composer (the same library that sends mail).
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';

/** The raw RFC 5322 bytes of a message. */
export function compose(options: Mail.Options): Promise<Buffer> {
  return new MailComposer(options).compile().build();
}
