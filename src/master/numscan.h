/*
 * Numbers found in a step's output (a step's numbers = { NAME = "regex" },
 * steps/step-numbers.c) and the parsing of a number's text.  Pure: no loop,
 * no I/O, no config.  Each regex (PCRE2, bytes not UTF-8 characters, JIT-
 * compiled when the library has it) is searched in every stdout line, the
 * first KILN_NUMSCAN_MAX_LINE bytes of it; the value is group 1 of the
 * first match in the LAST line that matched.  Every match runs under
 * warnscan's PCRE2 limits (common/limits.h); a regex that hits one is off
 * for the rest of the scan and numscan_error() says so.
 */
#ifndef KILN_MASTER_NUMSCAN_H
#define KILN_MASTER_NUMSCAN_H

#include <stdbool.h>
#include <stddef.h>

struct numscan;

/* Compiles regexes[0..n) (NUL-terminated, each with a capture group).
 * 0 and *ret (free with numscan_free), or KILN_ECONFIG with *ret_err
 * (owned): "regex 2: missing closing parenthesis at offset 7". */
int numscan_new(const char *const *regexes, size_t n, struct numscan **ret, char **ret_err);
void numscan_free(struct numscan *s); /* NULL-safe */

/* More stdout, in arrival order (lines end at '\n'; a '\r' before it is
 * not part of the line). */
void numscan_feed(struct numscan *s, const char *data, size_t len);
/* End of the output: the partial line still held is scanned. */
void numscan_finish(struct numscan *s);

/* The value regex i found: 1 and *ret[0..*ret_len) (borrowed, valid until
 * the next feed), 0 when no line matched, KILN_ETOOBIG when the value was
 * longer than KILN_NUMSCAN_MAX_VALUE bytes (no number is). */
int numscan_value(const struct numscan *s, size_t i, const char **ret, size_t *ret_len);
/* The first limit error of the scan ("regex 1: match limit exceeded on
 * line 12, regex skipped from there"), or NULL. */
const char *numscan_error(const struct numscan *s);

/* A number's text (blanks around it allowed): decimal, optionally signed,
 * with a fraction and an exponent ("42", "-1.5", "2e3"); hex, NaN and
 * infinities are not numbers, nor a value past a double's range.  0 and
 * *ret, or -EINVAL. */
int numscan_parse(const char *text, size_t len, double *ret);

#endif
