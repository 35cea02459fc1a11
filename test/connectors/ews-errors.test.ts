import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toEwsError, type EwsItemScope } from '../../src/connectors/ews/errors.js';
import { xmlText } from '../../src/connectors/ews/xml-text.js';

const ctx = { host: 'mail.contoso.test', port: 443, secrets: ['Hunter2-Secret'] };

test('item-level EWS codes answer for what was addressed; nothing else becomes NOT_FOUND', () => {
  const cases: [string | undefined, EwsItemScope | undefined, string][] = [
    ['ErrorItemNotFound', 'message', 'MESSAGE_NOT_FOUND'],
    ['ErrorInvalidIdMalformed', 'message', 'MESSAGE_NOT_FOUND'],
    ['ErrorInvalidIdMalformedEwsLegacyIdFormat', 'message', 'MESSAGE_NOT_FOUND'],
    ['ErrorItemNotFound', 'attachment', 'ATTACHMENT_NOT_FOUND'],
    ['ErrorInvalidAttachmentId', 'attachment', 'ATTACHMENT_NOT_FOUND'],
    ['ErrorFolderNotFound', 'folder', 'FOLDER_NOT_FOUND'],
    ['ErrorFolderNotFound', 'message', 'FOLDER_NOT_FOUND'],
    ['ErrorInvalidIdMalformed', 'folder', 'FOLDER_NOT_FOUND'],
    // without a scope (the session's own checks) an item code stays a protocol error
    ['ErrorItemNotFound', undefined, 'MAIL_PROTOCOL_ERROR'],
    ['ErrorServerBusy', 'message', 'MAIL_PROTOCOL_ERROR'],
    ['ErrorAccessDenied', 'message', 'EWS_ACCESS_DENIED'],
    // a move's target folder gone meanwhile, a watched folder gone
    ['ErrorToFolderNotFound', 'message', 'FOLDER_NOT_FOUND'],
    ['ErrorSyncFolderNotFound', 'folder', 'FOLDER_NOT_FOUND'],
    // sending: not as this mailbox, not this large; other refusals name Exchange's error
    ['ErrorSendAsDenied', undefined, 'EWS_ACCESS_DENIED'],
    ['ErrorMessageSizeExceeded', undefined, 'MESSAGE_TOO_LARGE'],
    ['ErrorIrresolvableConflict', 'message', 'MAIL_PROTOCOL_ERROR'],
  ];
  for (const [ewsCode, scope, expected] of cases) {
    const err = toEwsError({ message: 'The specified object was not found in the store.' }, { ...ctx, ewsCode, scope });
    assert.equal(err.code, expected, `${ewsCode} / ${scope}`);
  }
});

test('an answer over the HTTP client bound is DOWNLOAD_TOO_LARGE, not a network error that would reconnect', () => {
  const transport = Object.assign(new Error('maxContentLength size of 68157440 exceeded'), { code: 'ERR_BAD_RESPONSE' });
  assert.equal(toEwsError({ message: 'maxContentLength size of 68157440 exceeded' }, { ...ctx, transport, scope: 'attachment' }).code, 'DOWNLOAD_TOO_LARGE');
});

test('every free-form string reaches the library escaped; characters XML cannot carry are dropped', () => {
  assert.equal(xmlText(`R&D "Q1" <b>it's</b>`), 'R&amp;D &quot;Q1&quot; &lt;b&gt;it&apos;s&lt;/b&gt;');
  assert.equal(xmlText('tab\there\r\nnull\u0000bell\u0007 end\uffff'), 'tab\there\r\nnullbell end');
  assert.equal(xmlText('Zoë 😀'), 'Zoë 😀');
});
