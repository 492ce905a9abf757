/*
 * Warning counting over a step's output (the `compile` step) and a small
 * PCRE2 extraction helper (`set_property_from_command`).  Pure: no loop, no
 * I/O, no config; patterns are PCRE2 regular expressions (8-bit, bytes not
 * UTF-8 characters, JIT-compiled when the library has it), every match run
 * under the match, depth and heap limits of common/limits.h so that a
 * catastrophic pattern costs bounded time and is reported, never stalls.
 *
 * Semantics follow Buildbot's WarningCountingShellCommand:
 *  - a line is a warning when one of the patterns matches it, tried from
 *    the start of the line (Python's re.match: begin a pattern with .* to
 *    find it anywhere); each line counts once, the first matching pattern
 *    gives its parts;
 *  - a pattern's named groups (?<file>...), (?<line>...) and (?<text>...)
 *    say which file, line number and message the warning is about (absent:
 *    no file, no line, the whole line as text); suppressions use them;
 *  - lines "make...: Entering directory 'D'" / "make...: Leaving directory"
 *    keep a directory stack; a warning's file is prefixed with it
 *    ("D/file.c") and those lines are never warnings themselves;
 *  - a suppression (file regex, warning regex, optional line range) drops a
 *    warning when: its file regex is unset, or the warning has no file, or
 *    the regex matches the file from its start; and its warning regex is
 *    unset or found anywhere in the text; and, when it has a range, the
 *    warning has a line within it (inclusive).  Dropped warnings are not
 *    counted and not stored.
 *
 * Adding a default pattern: append it to warnscan.c's default list,
 * docs/CONFIG.md ("Warning patterns") and a sample line to
 * tests/unit/test-warnscan.c.
 */
#ifndef KILN_MASTER_WARNSCAN_H
#define KILN_MASTER_WARNSCAN_H

#include <stddef.h>
#include <stdint.h>

struct warnscan_config;
struct warnscan;

/* Patterns and suppressions, compiled; read-only once built and shared by
 * any number of scans (one thread at a time: the master's loop). */

/*
 * Compiles patterns[0..n) (NUL-terminated, at most
 * KILN_WARNSCAN_MAX_PATTERN_LEN bytes each, n <= KILN_WARNSCAN_MAX_PATTERNS);
 * n == 0 selects the defaults: gcc/clang "FILE:LINE[:COL]: warning: TEXT",
 * linker "ld: warning: TEXT" and Buildbot's "(?i).*warning[: ].*".
 * Returns 0 and *ret (free with warnscan_config_free), or KILN_ECONFIG with
 * *ret_err (owned by the caller), e.g. "warning pattern 2: missing closing
 * parenthesis at offset 7", or KILN_ETOOBIG past a cap (with *ret_err).
 */
int warnscan_config_new(const char *const *patterns, size_t n, struct warnscan_config **ret,
			char **ret_err);
void warnscan_config_free(struct warnscan_config *c); /* NULL-safe */

/*
 * Adds one suppression: file_re (NULL = any file), warn_re (NULL = any
 * text), a line range start..end (inclusive; both 0 = any line; start alone
 * means that one line).  At most KILN_WARNSCAN_MAX_SUPPRESSIONS in all.
 * 0, or KILN_ECONFIG / KILN_ETOOBIG with *ret_err ("suppression 3: file
 * regex: ... at offset N").
 */
int warnscan_config_suppress(struct warnscan_config *c, const char *file_re, const char *warn_re,
			     long start, long end, char **ret_err);

/*
 * Adds the suppressions of a suppression file in Buildbot's format, one per
 * line: "FILE-RE : WARNING-RE" or "FILE-RE : WARNING-RE : START[-END]"
 * (FILE-RE holds no ':'; blanks around the parts are dropped; blank lines
 * and lines starting with '#' are comments; other lines that do not fit the
 * format are skipped, as Buildbot does).  text need not be NUL-terminated;
 * at most KILN_WARNSCAN_MAX_SUPPRESSION_FILE bytes.  Returns the number of
 * suppressions added, or KILN_ECONFIG / KILN_ETOOBIG with *ret_err naming
 * the file's line ("line 4: warning regex: ...").
 */
int warnscan_config_parse_suppressions(struct warnscan_config *c, const char *text, size_t len,
				       char **ret_err);

/* One scan: the output of one step.  c is borrowed and must outlive it. */
struct warnscan *warnscan_new(const struct warnscan_config *c);
void warnscan_free(struct warnscan *s); /* NULL-safe */

/*
 * Feeds a piece of output of stream ('o', 'e' or 'h'; others count as 'o'),
 * in arrival order; each stream keeps its own partial line (a line is cut
 * at KILN_WARNSCAN_MAX_LINE bytes, the rest of it ignored).  A trailing
 * '\r' is not part of a line.  Returns 0, or KILN_ETOOBIG when a match in
 * this piece hit a PCRE2 limit: that pattern (or suppression) is then off
 * for the rest of the scan and warnscan_error() says which and where.
 * Scanning goes on either way.
 */
int warnscan_feed(struct warnscan *s, char stream, const char *data, size_t len);
/* End of the output: scans the partial lines still held; adds the marker
 * to the warnings log if it was cut.  Returns like warnscan_feed. */
int warnscan_finish(struct warnscan *s);

uint64_t warnscan_count(const struct warnscan *s);      /* warnings counted */
uint64_t warnscan_suppressed(const struct warnscan *s); /* dropped by suppressions */
/*
 * The warnings log: every counted warning line with its '\n', in order, cut
 * at KILN_WARNSCAN_MAX_LOG bytes (the count goes on; after
 * warnscan_finish() a last line "[kiln: warnings log cut ...: N more
 * warnings not shown]" says so).  Borrowed: valid until the next feed.
 */
const char *warnscan_log(const struct warnscan *s, size_t *ret_len);
/* The first limit error of this scan ("warning pattern 1: match limit
 * exceeded on line 12, pattern skipped from there"), or NULL. */
const char *warnscan_error(const struct warnscan *s);

/*
 * maxWarnCount: the result the warnings give the step (db.h's codes):
 * RESULTS_SUCCESS with no warning, RESULTS_WARNINGS with some, over_result
 * (RESULTS_FAILURE as Buildbot, or RESULTS_WARNINGS) when count exceeds
 * max_warn_count (max_warn_count < 0: no threshold).  The caller combines
 * it with the command's own result (db_results_worst).
 */
int warnscan_result(uint64_t count, long long max_warn_count, int over_result);

/*
 * Called by warnscan_extract for each value: name is a named group's name,
 * or NULL for group 1 of a pattern without named groups (the caller names
 * it); value[0..len) is borrowed for the call.
 */
typedef void (*warnscan_extract_fn)(void *ud, const char *name, const char *value, size_t len);

/*
 * Extraction for set_property_from_command: compiles regex (multi-line: ^
 * and $ match at each line; at most KILN_WARNSCAN_MAX_PATTERN_LEN bytes),
 * finds its first match in text[0..len) and calls cb once per named group
 * that took part in it (in the order of their names), or, without named groups,
 * once with group 1 (NULL name; the whole match when there is no group).
 * Returns the number of calls (0: no match), or KILN_ECONFIG (bad regex) /
 * KILN_ETOOBIG (a PCRE2 limit hit, or regex too long) with *ret_err.
 */
int warnscan_extract(const char *regex, const char *text, size_t len, warnscan_extract_fn cb,
		     void *ud, char **ret_err);

#endif
