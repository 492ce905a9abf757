/*
 * Internals shared by the test-report parsers (testreport.c: the front,
 * detection, caps and records; testreport-<format>.c: one format each).
 * Nothing outside src/master/testreport*.c includes this.
 *
 * Adding a format: write testreport-<name>.c exporting a const struct
 * testreport_fmt, add its enum value in testreport.h, one line in
 * testreport.c's table and in testreport_detect(), a unit test in
 * tests/unit/test-testreport.c and a fuzz corpus.
 */
#ifndef KILN_MASTER_TESTREPORT_INT_H
#define KILN_MASTER_TESTREPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "master/testreport.h"

struct testreport_fmt {
	enum testreport_format format;
	const char *name;
	void *(*open)(struct testreport *tr);
	/* Both return 0 or an error set with testreport_fail(). */
	int (*feed)(void *st, const char *data, size_t len);
	int (*finish)(void *st);
	void (*free)(void *st);
};

extern const struct testreport_fmt testreport_tap_fmt;
extern const struct testreport_fmt testreport_junit_fmt;
extern const struct testreport_fmt testreport_gotest_fmt;

/* A test's text (message, output) under a cap: bytes past it are dropped
 * and the text ends with a marker saying so. */
struct testreport_text {
	struct buf b;
	bool cut;
};
void testreport_text_init(struct testreport_text *t, size_t cap);
void testreport_text_add(struct testreport_text *t, const char *s, size_t n);
void testreport_text_reset(struct testreport_text *t);
void testreport_text_release(struct testreport_text *t);
/* The text, NUL-terminated (testreport_emit() marks a text over its cap). */
const char *testreport_text_get(struct testreport_text *t);

/* Sets the parser's error (the first one wins) and returns r. */
int testreport_fail(struct testreport *tr, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Hands a record to the consumer: name, message and file cut at their caps
 * and made valid UTF-8 (rec's strings need not be), counts updated, the
 * tests cap checked.  Returns 0 or an error (already set). */
int testreport_emit(struct testreport *tr, const struct testreport_record *rec);

/* Splits a stream into lines ('\n', a '\r' before it dropped) of at most
 * KILN_TESTREPORT_MAX_LINE bytes: fn gets each line NUL-terminated.  A NUL
 * byte in a line is an error (binary input). */
typedef int (*testreport_line_fn)(void *st, char *line, size_t len);
struct testreport_lines {
	struct buf part; /* an unfinished line */
	int64_t lineno;  /* of the last line handed out */
};
void testreport_lines_init(struct testreport_lines *l);
void testreport_lines_release(struct testreport_lines *l);
int testreport_lines_feed(struct testreport *tr, struct testreport_lines *l, const char *data,
			  size_t len, testreport_line_fn fn, void *st);
/* Hands out the last line if it had no '\n'. */
int testreport_lines_finish(struct testreport *tr, struct testreport_lines *l,
			    testreport_line_fn fn, void *st);

/* Seconds as text ("0.123") to whole milliseconds; -1 if not a number >= 0. */
int64_t testreport_secs_to_ms(const char *s, size_t n);

#endif
