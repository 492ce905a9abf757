/*
 * Streaming test-report parsers: TAP (12, 13, 14), JUnit XML (pytest,
 * CTest --output-junit, GoogleTest, Maven Surefire) and `go test -json`,
 * fed in pieces as the bytes arrive, calling back once per test.  Used by
 * the `test` step through testingest.h; pure (no loop, no database).
 *
 * Every cap is in common/limits.h (KILN_TESTREPORT_*): names, messages and
 * file paths are cut at their caps; the report's size, its number of tests,
 * the length of one line and the nesting of XML or TAP subtests end the
 * parse with an error.  Malformed or binary input is an error with a
 * message (testreport_errmsg), never a crash.  Strings handed to the
 * callback are valid UTF-8 (invalid bytes become U+FFFD).
 */
#ifndef KILN_MASTER_TESTREPORT_H
#define KILN_MASTER_TESTREPORT_H

#include <stddef.h>
#include <stdint.h>

enum testreport_format {
	TESTREPORT_AUTO, /* decided from the first bytes (testreport_detect) */
	TESTREPORT_TAP,
	TESTREPORT_JUNIT,
	TESTREPORT_GOTEST,
};

/* One test, borrowed for the callback's duration. */
struct testreport_record {
	const char *name;    /* never NULL or empty; "parent / child" for TAP subtests */
	int result;          /* RESULTS_SUCCESS, RESULTS_FAILURE or RESULTS_SKIPPED (db.h) */
	int64_t duration_ms; /* -1: unknown */
	const char *message; /* failure/skip text, output; "" when none */
	const char *file;    /* NULL when unknown */
	int64_t line;        /* -1 when unknown */
};

/* Returns >= 0 to go on, or a negative error that ends the parse (feed or
 * finish returns it; testreport_errmsg says "stopped by its consumer"). */
typedef int (*testreport_fn)(void *userdata, const struct testreport_record *rec);

struct testreport_summary {
	int64_t total, passed, failed, skipped;
};

struct testreport;

/* A parser for format (TESTREPORT_AUTO: detected from the first bytes).
 * Never NULL. */
struct testreport *testreport_new(enum testreport_format format, testreport_fn cb, void *userdata);
/* NULL-safe. */
void testreport_free(struct testreport *tr);
/* Parses len more bytes; records are emitted as soon as they are complete.
 * Returns 0, or a negative error (KILN_EPARSE malformed, KILN_ETOOBIG over a
 * cap, or the callback's); after an error every call returns it again. */
int testreport_feed(struct testreport *tr, const void *data, size_t len);
/* The end of the report: emits what was pending and checks the report is
 * complete (a TAP plan fulfilled, a closed XML document, ...).  Returns 0 or
 * an error; *ret_err (may be NULL) is then the message, borrowed from tr. */
int testreport_finish(struct testreport *tr, const char **ret_err);
/* The message of the error feed or finish returned ("" if none). */
const char *testreport_errmsg(const struct testreport *tr);
/* Counts of the records emitted so far. */
const struct testreport_summary *testreport_summary(const struct testreport *tr);
/* The format in use (TESTREPORT_AUTO until enough bytes decided it). */
enum testreport_format testreport_format(const struct testreport *tr);

/* "N tests, F failed, S skipped" (malloc'd). */
char *testreport_summary_text(const struct testreport_summary *s);

/* Guesses the format from a report's first bytes (a BOM and leading blank
 * space skipped): 1 and *ret when decided, 0 when more bytes are needed,
 * KILN_EPARSE when no format fits. */
int testreport_detect(const void *data, size_t len, enum testreport_format *ret);
/* "auto", "tap", "junit", "gotest" <-> the enum; -EINVAL for another name. */
int testreport_format_parse(const char *name, enum testreport_format *ret);
const char *testreport_format_name(enum testreport_format format);

#endif
