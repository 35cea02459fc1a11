/**
 * Bounds of the MIME parsing that are not settings: each keeps hostile mail (a 50 MB header, 10,000 parts,
 * endless nesting, megabytes of HTML) from costing unbounded memory or CPU. The one setting,
 * MSB_PARSE_MAX_BYTES, bounds how much of a message is read at all; these bound what is done with it.
 */

/** The largest header block kept of a message or part; beyond it the result is truncated (mailsplit's own default). */
export const HEADER_MAX_BYTES = 1024 * 1024;

/**
 * MIME parts one message may have before the parser gives up on the rest (mailsplit's maxChildNodes, default
 * 1000). Parsing costs about 0.3-1 ms and 5 KB of heap per part (10,000 parts: 1.5-5 s, 55 MB measured here),
 * so a hostile message with more parts than this stops early: truncated, with the attachments seen so far and
 * no text.
 */
export const MAX_PARTS = 2_000;

/** Attachments listed per message; a message with more says truncated: true. */
export const MAX_LISTED_ATTACHMENTS = 1000;

/**
 * HTML converted to plain text (for `text` when a message has only HTML) at most, in characters. html-to-text
 * costs about 1 s per few MB; a longer HTML body keeps its `html` and gets `text: null`.
 */
export const HTML_TO_TEXT_MAX_CHARS = 2 * 1024 * 1024;

/**
 * Bytes of each message's text part read for a list with include=text. The page's text is a preview for a
 * loop; GET /messages/{id} reads the whole text (up to MSB_PARSE_MAX_BYTES).
 */
export const LIST_TEXT_MAX_BYTES = 128 * 1024;
