import type * as EwsApi from 'ews-javascript-api';
import type { ListQuery } from '../../domain/mail.js';
import type { ListCursor } from './cursor.js';
import { MAPI } from './item-mapping.js';

/**
 * The list's filters as one FindItem restriction (AND of the conditions; the `;` alternatives of one
 * condition ORed): subject and sender "contain" case-insensitively, status on IsRead, since/before on
 * DateTimeReceived, and the cursor's anchor (cursor.ts). The sender is searched in the MAPI properties of
 * the From header (name, address, SMTP address), which every Exchange version lets a restriction use.
 */
export function listFilter(ews: typeof EwsApi, query: ListQuery, cursor: ListCursor | undefined): EwsApi.SearchFilter | null {
  const { SearchFilter } = ews;
  const contains = (prop: EwsApi.PropertyDefinitionBase, text: string) =>
    new SearchFilter.ContainsSubstring(prop, text, ews.ContainmentMode.Substring, ews.ComparisonMode.IgnoreCase);
  const anyOf = (filters: EwsApi.SearchFilter[]) => (filters.length === 1 ? filters[0]! : new SearchFilter.SearchFilterCollection(ews.LogicalOperator.Or, filters));
  const fromProps = [MAPI.fromName, MAPI.fromEmail, MAPI.fromSmtp].map((tag) => new ews.ExtendedPropertyDefinition(tag, ews.MapiPropertyType.String));
  const at = (ms: number) => new ews.DateTime(ms);

  const all: EwsApi.SearchFilter[] = [];
  if (query.subject.length) all.push(anyOf(query.subject.map((s) => contains(ews.ItemSchema.Subject, s))));
  if (query.from.length) all.push(anyOf(query.from.flatMap((s) => fromProps.map((p) => contains(p, s)))));
  if (query.status !== 'all') all.push(new SearchFilter.IsEqualTo(ews.EmailMessageSchema.IsRead, query.status === 'read'));
  if (query.since) all.push(new SearchFilter.IsGreaterThanOrEqualTo(ews.ItemSchema.DateTimeReceived, at(query.since.getTime())));
  if (query.before) all.push(new SearchFilter.IsLessThan(ews.ItemSchema.DateTimeReceived, at(query.before.getTime())));
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
