/*
 * `kiln watch`'s model: the builders with their last build, running build
 * and recent results, built from the REST answers (GET /api/v2/builders,
 * /api/v2/builds), plus the pure formatting the screen and --once share
 * (result words and marks, progress from eta_at, the name filter).  No
 * curses and no network here: tests/unit/test-watch.c covers all of it.
 */
#ifndef KILN_CLIENT_CMD_WATCH_H
#define KILN_CLIENT_CMD_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* recent results kept per builder (the row's coloured marks) */
#define WATCH_MARKS 10
/* builders shown at most (the rest are counted, not kept) */
#define WATCH_MAX_BUILDERS 10000
/* the filter's longest text */
#define WATCH_FILTER_MAX 64

/* what a builder row shows in its LAST column (and its colour) */
enum watch_look {
	WATCH_IDLE,      /* no build yet */
	WATCH_SUCCESS,   /* green */
	WATCH_WARNINGS,  /* orange */
	WATCH_FAILURE,   /* red */
	WATCH_EXCEPTION, /* purple: EXCEPTION, RETRY */
	WATCH_CANCELLED, /* dim: SKIPPED, CANCELLED */
	WATCH_RUNNING,   /* yellow */
	WATCH_LOOK_COUNT,
};

struct watch_build {
	long long buildid; /* 0: none */
	long long number;
	long long results; /* -1 while running */
	bool complete;
	double started_at, complete_at;
	double eta_at; /* 0: no estimate */
	char state_string[80];
};

struct watch_builder {
	long long id;
	char *name;                        /* owned */
	struct watch_build last;           /* newest build, running or not (buildid 0: none) */
	struct watch_build running;        /* newest running build (buildid 0: none) */
	char step[64];                     /* the running build's current step, "" unknown */
	double step_eta_at;                /* that step's eta_at, 0 none */
	long long recent[WATCH_MARKS];     /* results of the newest finished builds, newest first */
	long long recent_ids[WATCH_MARKS]; /* their build ids */
	size_t nrecent;
};

struct watch_state {
	struct watch_builder *b; /* owned, by name */
	size_t n;
	size_t dropped; /* builders past WATCH_MAX_BUILDERS */
};

void watch_state_release(struct watch_state *s);

/*
 * Replaces the builders with the array of a GET /api/v2/builders answer
 * (items without a name or id are skipped), sorted by name; builds are
 * forgotten.  Returns the number kept.
 */
size_t watch_state_set_builders(struct watch_state *s, const json_t *builders);

/*
 * Reads a builds array (GET /api/v2/builds, any order, running and
 * finished mixed): per builder the newest build becomes 'last', the newest
 * running one 'running', and the newest WATCH_MARKS finished ones 'recent'.
 * Builds of unknown builders are ignored.  Call after set_builders.
 */
void watch_state_add_builds(struct watch_state *s, const json_t *builds);

/* The builder with this id, or NULL. */
struct watch_builder *watch_state_find(struct watch_state *s, long long id);

/* One build from its REST object. */
void watch_build_from_json(struct watch_build *b, const json_t *o);

/* The look of a build (running when not complete), or WATCH_IDLE for none. */
enum watch_look watch_build_look(const struct watch_build *b);
enum watch_look watch_result_look(long long results);
/* "success", "warnings", "failure", "exception", "skipped", "retry", "cancelled",
 * "running", "idle" */
const char *watch_build_word(const struct watch_build *b);
/* One character per finished result: s w F S E R C ('?' unknown). */
char watch_result_mark(long long results);

/*
 * The progress of something started at 'started' and expected to end at
 * 'eta_at' (0: no estimate), at 'now', into out (at most n bytes):
 * "[#####.....]  52% 1m10s left", "[##########] overdue 12s", or
 * "running 1m05s" without an estimate.  bar_width is the bar's inside
 * (0: no bar).  Returns the percentage (0..100), or -1 without an estimate.
 */
int watch_format_progress(double now, double started, double eta_at, int bar_width, char *out,
			  size_t n);

/* True when 'filter' (case-insensitive) is in 'name'; an empty filter matches all. */
bool watch_filter_match(const char *name, const char *filter);

/*
 * The plain-text snapshot of `kiln watch --once`: a header line and a
 * table of the builders matching 'filter', at 'now'.
 */
void watch_print_once(const struct watch_state *s, const char *url, const char *filter, double now,
		      FILE *f);

#endif
