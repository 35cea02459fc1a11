import type { StartTlsMode } from '../connectors/tls.js';

/** What inspect shows of an IMAP/POP3 session's transport security, and the warnings that go with it. */
export interface MailTlsView {
  tls: { mode: string; verifyCertificate: boolean; customCa: boolean; servername?: string };
  warnings: string[];
}

/**
 * The TLS facts as they are: without TLS no certificate is verified, whatever the body said, and a
 * session that gives up protection says so in `warnings`, where a bot's operator will see it.
 */
export function mailTlsView(options: { secure: boolean; starttls: StartTlsMode; verifyCertificate: boolean; customCa: boolean; servername?: string | undefined }): MailTlsView {
  const { secure, starttls } = options;
  const mode = secure ? 'implicit' : starttls === 'off' ? 'none' : `starttls-${starttls}`;
  const tls = mode !== 'none';
  const warnings: string[] = [];
  if (!tls) {
    warnings.push('no TLS (secure: false, tls.starttls: "off"): the password and the mail cross the network in cleartext; use secure: true or STARTTLS');
  } else if (!options.verifyCertificate) {
    warnings.push(
      'tls.verifyCertificate is false: the server certificate is not checked, so anyone on the network path can pose as the server and read the password and the mail; give the server\'s CA in tls.ca instead',
    );
  }
  if (mode === 'starttls-opportunistic') {
    warnings.push('tls.starttls is "opportunistic": when the server does not offer STARTTLS, the password is sent in cleartext; use "required"');
  }
  return {
    tls: { mode, verifyCertificate: tls && options.verifyCertificate, customCa: options.customCa, ...(options.servername ? { servername: options.servername } : {}) },
    warnings,
  };
}
