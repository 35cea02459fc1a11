import type * as EwsApi from 'ews-javascript-api';
import type { MessageFilter } from '../../domain/mail.js';
import type { ListCursor } from './cursor.js';
import { MAPI } from './item-mapping.js';
import { xmlText } from './xml-text.js';

/**
 * The list's filters as one FindItem restriction (AND of the conditions; the `;` alternatives of one
 * condition ORed): subject and sender "contain" case-insensitively, status on IsRead, since/before on
 * DateTimeReceived, and the cursor's anchor (cursor.ts). Constants are escaped (xml-text.ts). The sender is searched in the MAPI properties of
 * the From header (name, address, SMTP address), which every Exchange version lets a restriction use.
 *
 * `withoutKeyword` (work claims: not done yet) is Not(Contains) on the multi-valued Categories: Exchange
 * applies a restriction on a multi-valued property to each value (true when any value matches), so
 * Contains with FullString is "has this category" (ignoring case, as Outlook treats category names), and
 * its negation holds for a message without categories too. The bulk changes use the same restriction.
 */
export function listFilter(ews: typeof EwsApi, query: MessageFilter & { order?: 'newest' | 'oldest' }, cursor: ListCursor | undefined): EwsApi.SearchFilter | null {
  const { SearchFilter } = ews;
  const contains = (prop: EwsApi.PropertyDefinitionBase, text: string) =>
    new SearchFilter.ContainsSubstring(prop, xmlText(text), ews.ContainmentMode.Substring, ews.ComparisonMode.IgnoreCase);
  const anyOf = (filters: EwsApi.SearchFilter[]) => (filters.length === 1 ? filters[0]! : new SearchFilter.SearchFilterCollection(ews.LogicalOperator.Or, filters));
  const fromProps = [MAPI.fromName, MAPI.fromEmail, MAPI.fromSmtp].map((tag) => new ews.ExtendedPropertyDefinition(tag, ews.MapiPropertyType.String));
  const at = (ms: number) => new ews.DateTime(ms);

  const all: EwsApi.SearchFilter[] = [];
  if (query.subject.length) all.push(anyOf(query.subject.map((s) => contains(ews.ItemSchema.Subject, s))));
  if (query.from.length) all.push(anyOf(query.from.flatMap((s) => fromProps.map((p) => contains(p, s)))));
  if (query.status !== 'all') all.push(new SearchFilter.IsEqualTo(ews.EmailMessageSchema.IsRead, query.status === 'read'));
  if (query.since) all.push(new SearchFilter.IsGreaterThanOrEqualTo(ews.ItemSchema.DateTimeReceived, at(query.since.getTime())));
  if (query.before) all.push(new SearchFilter.IsLessThan(ews.ItemSchema.DateTimeReceived, at(query.before.getTime())));
  if (query.withoutKeyword) {
    all.push(new SearchFilter.Not(new SearchFilter.ContainsSubstring(ews.ItemSchema.Categories, xmlText(query.withoutKeyword), ews.ContainmentMode.FullString, ews.ComparisonMode.IgnoreCase)));
  }
  if (cursor) {
    // the whole anchor second: DateTimeReceived is shown to the second but kept finer
    all.push(
      query.order === 'newest'
        ? new SearchFilter.IsLessThan(ews.ItemSchema.DateTimeReceived, at((cursor.t + 1) * 1000))
        : new SearchFilter.IsGreaterThanOrEqualTo(ews.ItemSchema.DateTimeReceived, at(cursor.t * 1000)),
    );
  }
  if (all.length === 0) return null;
  return all.length === 1 ? all[0]! : new SearchFilter.SearchFilterCollection(ews.LogicalOperator.And, all);
}
