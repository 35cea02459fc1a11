/**
 * ews-javascript-api writes the strings it is given into the SOAP request as they are, element text and
 * attribute values alike: a subject with "&", an HTML body, a category or a search constant with a quote
 * would make the XML invalid (Exchange: ErrorSchemaValidation) or change its structure. Its maintainer
 * leaves escaping to the caller by design (gautamsi/ews-javascript-api issues #358 and #368), so every
 * free-form string of ours passes through here on its way into a request: subjects, bodies, names and
 * addresses, file names, categories, restriction constants, folder display names.
 *
 * Characters XML 1.0 cannot carry at all (C0 controls but tab, line feed and carriage return; U+FFFE,
 * U+FFFF) are dropped: the schemas refuse them in every field but the message bodies, where they have no
 * meaning a mail reader would show.
 */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;
const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function xmlText(text: string): string {
  return text.replace(NOT_XML, '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}
