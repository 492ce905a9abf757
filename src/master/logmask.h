/*
 * Masking secret values in a step's output however it arrives in pieces
 * (build.c's stdio log).  Pure: no loop, no I/O, no config.
 *
 * The guarantee: a secret's bytes are replaced by "<secret>" when they
 * appear one after the other, with at most LOGMASK_MAX_GAP line terminators
 * ('\r', '\n') between any two of them, either in one stream (what the
 * command wrote to stdout, say, cut anywhere: kiln-worker's 4,096-byte line
 * cuts, a lone '\r', raw buildbot-worker chunks) or in all streams in arrival
 * order (half on stdout, half on stderr).  Each masked run of bytes within a
 * line becomes one "<secret>"; line terminators are kept, so what is stored
 * is line for line what arrived, less the secret.  The output does not
 * depend on where the pieces were cut.
 *
 * What is looked for, per secret value (the first KILN_LOGMASK_MAX_SECRET
 * bytes of it; a value shorter than LOGMASK_MIN_SECRET, terminators not
 * counted, is not masked in any form):
 *   - the value, its line terminators left out (a multi-line value printed
 *     as it is, or with "\r\n" for "\n");
 *   - each line of a multi-line value alone (LOGMASK_MIN_SECRET bytes or
 *     more), as a command may print one line of a key;
 *   - its percent-encoded form, when some byte is not unreserved (RFC 3986):
 *     each byte as itself or %XX in either case, ' ' also as '+', so
 *     whichever bytes an encoder chose to encode (no terminators between);
 *   - its base64 encoding (padded), and, for each of the three alignments at
 *     which it may sit inside a longer encoded text (the token after "user:"
 *     in a Basic auth header), the characters that depend on its bytes alone,
 *     in the standard and the URL-safe alphabet: the 1-2 characters that mix
 *     its first or last bits with its neighbours' stay visible.
 * The value's forms come first; past KILN_LOGMASK_MAX_PATTERNS forms of all
 * secrets, the encodings of the last secrets are the ones left out.
 */
#ifndef KILN_MASTER_LOGMASK_H
#define KILN_MASTER_LOGMASK_H

#include <stdbool.h>
#include <stddef.h>

struct logmask;
struct logmask_set;

/* Line terminators tolerated between two bytes of a secret ("\r\n" is two). */
#define LOGMASK_MAX_GAP 2
/* Secrets with fewer bytes than this (line terminators not counted) are not
 * masked: they would mask ordinary words. */
#define LOGMASK_MIN_SECRET 4
/* What a masked run becomes. */
#define LOGMASK_MARK "<secret>"

/*
 * Called with masked output of one stream, in that stream's order: whole
 * lines (ending in '\n') or, when logmask_flush() runs or a line reaches
 * KILN_LOGMASK_MAX_LINE bytes, the rest of a line without its '\n' (the
 * stored log ends it there).  text is valid during the call only.
 */
typedef void (*logmask_emit_fn)(void *ud, char stream, const char *text, size_t len);

/*
 * A masker for the values secrets[0..n) (copied; values shorter than
 * LOGMASK_MIN_SECRET are ignored) over the streams 'o', 'e' and 'h'.
 * Holds back, per stream, the current partial line and the bytes that may
 * still begin a secret (at most the longest secret's bytes and gaps).
 */
struct logmask *logmask_new(const char *const *secrets, size_t n, logmask_emit_fn emit, void *ud);

/*
 * The same in two parts, so that the patterns of a list of secrets (its
 * values' forms, indexed: the costly part) are made once and shared by many
 * maskers, e.g. every log of a build.  A set is immutable once made; it
 * must outlive the maskers made from it.
 */
struct logmask_set *logmask_set_new(const char *const *secrets, size_t n);
/* NULL-safe. */
void logmask_set_free(struct logmask_set *ks);
/* Whether ks has no pattern (no secret, or all too short): its maskers only
 * cut lines, and a caller may skip masking altogether. */
bool logmask_set_empty(const struct logmask_set *ks);
struct logmask *logmask_new_shared(const struct logmask_set *ks, logmask_emit_fn emit, void *ud);
/* Frees m without emitting what it holds (call logmask_flush first).  NULL-safe. */
void logmask_free(struct logmask *m);
/* Feeds one piece of output of stream ('o', 'e' or 'h'), in arrival order;
 * emit is called for whatever is now decided. */
void logmask_feed(struct logmask *m, char stream, const char *data, size_t len);
/* End of the output (step end, or before the master writes a line of its
 * own): decides and emits everything held, partial lines included. */
void logmask_flush(struct logmask *m);

#endif
