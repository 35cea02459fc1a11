import { parseSettingsUrl } from '../errors.js';

/** Where an EWS session connects, and what the service should say about that endpoint. */

/** Exchange versions ews-javascript-api 0.15 knows (its ExchangeVersion enum, minus its internal marker). */
export const EXCHANGE_VERSIONS = [
  'Exchange2007_SP1',
  'Exchange2010',
  'Exchange2010_SP1',
  'Exchange2010_SP2',
  'Exchange2013',
  'Exchange2013_SP1',
  'Exchange2015',
  'Exchange2016',
  'V2015_10_05',
  'V2016_01_06',
  'V2016_04_13',
  'V2016_07_13',
  'V2016_10_10',
  'V2017_01_07',
  'V2017_04_14',
  'V2017_07_11',
  'V2017_10_09',
  'V2018_01_08',
] as const;

export type ExchangeVersionName = (typeof EXCHANGE_VERSIONS)[number];

export const OFFICE365_EWS_URL = 'https://outlook.office365.com/EWS/Exchange.asmx';

/**
 * The rule of Automation Anywhere's Connect action: an explicit URL wins; else the domain gives https://<domain>/EWS/Exchange.asmx; with
 * neither, the Office 365 endpoint.
 */
export function ewsEndpoint(url: string | undefined, domain: string | undefined): URL {
  if (url) return parseSettingsUrl(url, '/body/url');
  if (domain) return parseSettingsUrl(`https://${domain.toLowerCase().replace(/\.$/, '')}/EWS/Exchange.asmx`, '/body/domain');
  return new URL(OFFICE365_EWS_URL);
}

/** Exchange Online hosts: worldwide, US Government (GCC High, DoD) and China (21Vianet). */
const EXCHANGE_ONLINE_HOSTS = new Set([
  'outlook.office365.com',
  'outlook.office.com',
  'outlook.office365.us',
  'outlook-dod.office365.us',
  'webmail.apps.mil',
  'partner.outlook.cn',
]);

export function isExchangeOnline(hostname: string): boolean {
  return EXCHANGE_ONLINE_HOSTS.has(hostname.toLowerCase().replace(/\.$/, ''));
}

/** Microsoft message center MC1227454. On-premises Exchange is not affected. */
export const EXCHANGE_ONLINE_RETIREMENT_WARNING =
  'EWS on Exchange Online is being retired (Microsoft MC1227454): blocked by default since 2026-10-01 (a tenant admin must allow-list the app ID) and shut down for good on 2027-04-01. Move this mailbox to the `outlook` session type (Microsoft Graph). On-premises Exchange is not affected.';

export const EXCHANGE_ONLINE_BASIC_WARNING =
  'Exchange Online turned Basic authentication off for EWS in 2022-2023 and it cannot be turned back on: use auth.type "oauth2".';
