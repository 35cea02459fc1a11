import util from 'node:util';

/**
 * ews-javascript-api 0.15 calls util.isNullOrUndefined (ExtendedPropertyDefinition, i.e. every extended
 * property: flags, categories' PidTag values), which Node removed in 23. On Node 24 the call threw inside the
 * library and every such request ended as MAIL_PROTOCOL_ERROR. The library looks the function up on the util
 * module at call time, so defining it once, before any EWS request, is enough; on Node 20 it is still there
 * and left alone.
 */
const u = util as unknown as { isNullOrUndefined?: (value: unknown) => boolean };
if (typeof u.isNullOrUndefined !== 'function') u.isNullOrUndefined = (value) => value === null || value === undefined;
