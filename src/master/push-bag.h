/*
 * Result bags pushed from outside (slice "push", docs/PUSH.md): the JSON a
 * client POSTs to /api/v2/push (pony-build's model), parsed and checked
 * whole before anything is queued, so a malformed bag is refused with a
 * message naming the problem and nothing of it is stored.  Pure: no loop,
 * no database (tests/unit/test-push.c, tests/fuzz/fuzz-push-json.c).
 */
#ifndef KILN_MASTER_PUSH_BAG_H
#define KILN_MASTER_PUSH_BAG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define PUSH_NAME_MAX 64           /* package, a tag, a step name */
#define PUSH_HOST_MAX 128          /* host, arch */
#define PUSH_REVISION_MAX 128      /* revision */
#define PUSH_CMD_MAX 4096          /* a step's command line */
#define PUSH_TAGS_MAX 16           /* tags of a bag */
#define PUSH_CLIENT_KEYS_MAX 32    /* client keys (package, host, ... included) */
#define PUSH_CLIENT_VALUE_MAX 1024 /* one other client value, as text */

struct push_limits {
	size_t max_steps;     /* steps in one bag (or one append) */
	size_t max_log_bytes; /* stdout or stderr of one step */
};

struct push_step {
	char *name;      /* owned, 1 to PUSH_NAME_MAX bytes */
	int results;     /* RESULTS_* */
	char *cmd;       /* owned, may be NULL */
	char *out, *err; /* owned, may be NULL: stdout and stderr */
	size_t out_len, err_len;
	double started_at, finished_at; /* epoch seconds; 0 = not given */
};

struct push_bag {
	/* client info: required package and host; the rest optional */
	char *package, *host, *arch; /* owned; arch may be NULL */
	char **tags;                 /* owned */
	size_t ntags;
	json_t *client; /* owned: every client key/value as given (strings, numbers, bools) */
	char *revision; /* owned, may be NULL */
	bool finished;  /* default true */
	struct push_step *steps; /* owned, in order */
	size_t nsteps;
	size_t log_bytes; /* stdout + stderr bytes of all steps */
};

/* Errors of push_bag_parse: the HTTP status to answer. */
enum {
	PUSH_BAD = 400,     /* malformed: why names the problem */
	PUSH_TOO_BIG = 413, /* over a cap (steps, log bytes): why names it */
};

/* Parses a whole bag (steps_only: the body of POST /push/ID/steps,
 * {"steps": [...]}, with no client part).  Returns 0 and *ret (release
 * with push_bag_release), or PUSH_BAD / PUSH_TOO_BIG with the reason in
 * why (one line). */
int push_bag_parse(const char *text, size_t len, const struct push_limits *lim, bool steps_only,
		   struct push_bag *ret, char *why, size_t whylen);
void push_bag_release(struct push_bag *b);

/* "success", "failure", ... or an integer 0 / nonzero: RESULTS_*, -1 if unknown. */
int push_results_from_json(const json_t *v);

#endif
