// The part of OData's $filter that Microsoft Graph accepts on messages, for the fake Graph: comparisons
// (eq ne gt ge lt le) of a property path with a string, boolean, number or DateTimeOffset literal,
// contains() and startswith() on strings, the lambda any() on a collection (categories/any(c:c eq 'X')),
// and / or / not with parentheses. Exchange compares strings
// case-insensitively. Also Graph's rule for $filter together with $orderby on messages (checkOrderBy).

export type FilterNode =
  | { t: 'and' | 'or'; l: FilterNode; r: FilterNode }
  | { t: 'not'; e: FilterNode }
  | { t: 'cmp'; op: string; path: string; value: Literal }
  | { t: 'fn'; name: 'contains' | 'startswith'; path: string; value: string }
  | { t: 'any'; path: string; variable: string; e: FilterNode };

type Literal = string | boolean | number | Date | null;

export class FilterError extends Error {}

const TOKEN = /\s*(?:(\()|(\))|(,|:)|'((?:[^']|'')*)'|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))|(-?\d+(?:\.\d+)?)(?![\w/])|([A-Za-z_][\w/.]*))/y;

type Token = { k: '(' | ')' | ',' | ':' | 'str' | 'date' | 'num' | 'word'; v: string };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) throw new FilterError(`Syntax error at position ${at} in '${text}'.`);
    if (m[1]) out.push({ k: '(', v: '(' });
    else if (m[2]) out.push({ k: ')', v: ')' });
    else if (m[3]) out.push({ k: m[3] as ',' | ':', v: m[3] });
    else if (m[4] !== undefined) out.push({ k: 'str', v: m[4].replaceAll("''", "'") });
    else if (m[5]) out.push({ k: 'date', v: m[5] });
    else if (m[6]) out.push({ k: 'num', v: m[6] });
    else out.push({ k: 'word', v: m[7]! });
  }
  return out;
}

const OPS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);

export function parseFilter(text: string): FilterNode {
  const tokens = tokenize(text);
  let i = 0;
  const peek = () => tokens[i];
  const next = () => {
    const t = tokens[i++];
    if (!t) throw new FilterError(`Syntax error: unexpected end of '${text}'.`);
    return t;
  };
  const expect = (k: Token['k']) => {
    const t = next();
    if (t.k !== k) throw new FilterError(`Syntax error: '${k}' expected, '${t.v}' found.`);
    return t;
  };
  const literal = (): Literal => {
    const t = next();
    if (t.k === 'str') return t.v;
    if (t.k === 'date') return new Date(t.v);
    if (t.k === 'num') return Number(t.v);
    if (t.k === 'word' && (t.v === 'true' || t.v === 'false')) return t.v === 'true';
    if (t.k === 'word' && t.v === 'null') return null;
    throw new FilterError(`Syntax error: a literal expected, '${t.v}' found.`);
  };
  const primary = (): FilterNode => {
    const t = next();
    if (t.k === '(') {
      const e = or();
      expect(')');
      return e;
    }
    if (t.k !== 'word') throw new FilterError(`Syntax error: '${t.v}' is not valid here.`);
    if (t.v === 'not') return { t: 'not', e: primary() };
    const lambda = /^(.+)\/any$/.exec(t.v);
    if (lambda && peek()?.k === '(') {
      expect('(');
      const variable = expect('word').v;
      expect(':');
      const e = or();
      expect(')');
      return { t: 'any', path: lambda[1]!, variable, e };
    }
    if (t.v === 'contains' || t.v === 'startswith') {
      expect('(');
      const path = expect('word').v;
      expect(',');
      const value = expect('str').v;
      expect(')');
      return { t: 'fn', name: t.v, path, value };
    }
    const op = next();
    if (op.k !== 'word' || !OPS.has(op.v)) throw new FilterError(`Syntax error: an operator expected after '${t.v}'.`);
    return { t: 'cmp', op: op.v, path: t.v, value: literal() };
  };
  const and = (): FilterNode => {
    let l = primary();
    while (peek()?.k === 'word' && peek()!.v === 'and') {
      i++;
      l = { t: 'and', l, r: primary() };
    }
    return l;
  };
  const or = (): FilterNode => {
    let l = and();
    while (peek()?.k === 'word' && peek()!.v === 'or') {
      i++;
      l = { t: 'or', l, r: and() };
    }
    return l;
  };
  const tree = or();
  if (i < tokens.length) throw new FilterError(`Syntax error: '${tokens[i]!.v}' is not valid here.`);
  return tree;
}

/** The conjuncts of the top-level "and" chain, in order. */
function conjuncts(node: FilterNode): FilterNode[] {
  return node.t === 'and' ? [...conjuncts(node.l), ...conjuncts(node.r)] : [node];
}

function paths(node: FilterNode): string[] {
  switch (node.t) {
    case 'and':
    case 'or':
      return [...paths(node.l), ...paths(node.r)];
    case 'not':
      return paths(node.e);
    case 'any':
      return [node.path];
    default:
      return [node.path];
  }
}

/**
 * Graph on messages: the properties of $orderby must appear in $filter, in the same order, before any
 * other property; else 400 InefficientFilter.
 */
export function checkOrderBy(node: FilterNode, orderBy: readonly string[]): boolean {
  const order = orderBy.map((p) => p.toLowerCase());
  let expected = 0;
  let others = false;
  for (const c of conjuncts(node)) {
    const props = [...new Set(paths(c).map((p) => p.toLowerCase()))];
    const sorted = props.length === 1 && order.includes(props[0]!);
    if (!sorted) {
      others = true;
      continue;
    }
    const at = order.indexOf(props[0]!);
    if (others || at < expected) return false;
    expected = at;
  }
  return order.every((p) => conjuncts(node).some((c) => paths(c).some((q) => q.toLowerCase() === p)));
}

function lookup(item: Record<string, unknown>, path: string): unknown {
  let value: unknown = item;
  for (const part of path.split('/')) value = (value as Record<string, unknown> | null | undefined)?.[part];
  return value;
}

function compare(a: unknown, b: Literal): number | undefined {
  if (b instanceof Date) {
    const at = typeof a === 'string' ? Date.parse(a) : Number.NaN;
    return Number.isNaN(at) ? undefined : Math.sign(at - b.getTime());
  }
  if (typeof b === 'string' && typeof a === 'string') return a.toLowerCase().localeCompare(b.toLowerCase());
  if (typeof b === 'number' && typeof a === 'number') return Math.sign(a - b);
  if (typeof b === 'boolean' || b === null) return a === b ? 0 : undefined;
  return undefined;
}

export function matches(node: FilterNode, item: Record<string, unknown>): boolean {
  switch (node.t) {
    case 'and':
      return matches(node.l, item) && matches(node.r, item);
    case 'or':
      return matches(node.l, item) || matches(node.r, item);
    case 'not':
      return !matches(node.e, item);
    case 'any': {
      const list = lookup(item, node.path);
      return Array.isArray(list) && list.some((element) => matches(node.e, { [node.variable]: element }));
    }
    case 'fn': {
      const value = lookup(item, node.path);
      if (typeof value !== 'string') return false;
      const hay = value.toLowerCase();
      const needle = node.value.toLowerCase();
      return node.name === 'contains' ? hay.includes(needle) : hay.startsWith(needle);
    }
    case 'cmp': {
      const c = compare(lookup(item, node.path), node.value);
      if (c === undefined) return node.op === 'ne';
      return { eq: c === 0, ne: c !== 0, gt: c > 0, ge: c >= 0, lt: c < 0, le: c <= 0 }[node.op as 'eq'] ?? false;
    }
  }
}
