/*
 * `kiln watch`'s model and formatting (cmd-watch.h): pure, unit-tested.
 */
#include "client/cli.h"
#include "client/cmd-watch.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WATCH_BAR_MAX 128 /* the widest progress bar */

void watch_state_release(struct watch_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->b[i].name);
	free(s->b);
	*s = (struct watch_state){0};
}

static int watch_builder_cmp(const void *a, const void *b)
{
	const struct watch_builder *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : (x->id > y->id) - (x->id < y->id);
}

size_t watch_state_set_builders(struct watch_state *s, const json_t *builders)
{
	size_t i, n = json_array_size(builders);
	json_t *o;

	watch_state_release(s);
	s->b = n ? xcalloc(n < WATCH_MAX_BUILDERS ? n : WATCH_MAX_BUILDERS, sizeof(*s->b)) : NULL;
	json_array_foreach(builders, i, o)
	{
		const char *name = cli_json_str(o, "name", NULL);
		long long id = cli_json_int(o, "builderid", -1);
		if (!name || id < 0)
			continue;
		if (s->n == WATCH_MAX_BUILDERS) {
			s->dropped++;
			continue;
		}
		s->b[s->n++] = (struct watch_builder){.id = id, .name = xstrdup(name)};
	}
	if (s->n > 1)
		qsort(s->b, s->n, sizeof(*s->b), watch_builder_cmp);
	return s->n;
}

struct watch_builder *watch_state_find(struct watch_state *s, long long id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->b[i].id == id)
			return &s->b[i];
	return NULL;
}

void watch_build_from_json(struct watch_build *b, const json_t *o)
{
	*b = (struct watch_build){
		.buildid = cli_json_int(o, "buildid", 0),
		.number = cli_json_int(o, "number", 0),
		.results = cli_json_int(o, "results", -1),
		.complete = cli_json_bool(o, "complete", false),
		.started_at = cli_json_num(o, "started_at", 0),
		.complete_at = cli_json_num(o, "complete_at", 0),
		.eta_at = cli_json_num(o, "eta_at", 0),
	};
	snprintf(b->state_string, sizeof(b->state_string), "%s",
		 cli_json_str(o, "state_string", ""));
	if (!b->complete)
		b->results = -1;
}

/* Builds with a higher buildid are newer. */
static void watch_builder_take(struct watch_builder *w, const json_t *o)
{
	struct watch_build b;
	size_t i;

	watch_build_from_json(&b, o);
	if (b.buildid <= 0)
		return;
	if (b.buildid > w->last.buildid)
		w->last = b;
	if (!b.complete) {
		if (b.buildid > w->running.buildid)
			w->running = b;
		return;
	}
	/* recent: kept newest first; a build is never counted twice (a caller
	 * may pass the same build in two lists) */
	for (i = 0; i < w->nrecent; i++) {
		if (w->recent_ids[i] == b.buildid)
			return;
		if (w->recent_ids[i] < b.buildid)
			break;
	}
	if (i == WATCH_MARKS)
		return;
	size_t keep = w->nrecent < WATCH_MARKS ? w->nrecent : WATCH_MARKS - 1;
	memmove(&w->recent[i + 1], &w->recent[i], (keep - i) * sizeof(w->recent[0]));
	memmove(&w->recent_ids[i + 1], &w->recent_ids[i], (keep - i) * sizeof(w->recent_ids[0]));
	w->recent[i] = b.results;
	w->recent_ids[i] = b.buildid;
	w->nrecent = keep + 1;
}

void watch_state_add_builds(struct watch_state *s, const json_t *builds)
{
	size_t i;
	json_t *o;

	json_array_foreach(builds, i, o)
	{
		struct watch_builder *w = watch_state_find(s, cli_json_int(o, "builderid", -1));
		if (w)
			watch_builder_take(w, o);
	}
}

enum watch_look watch_result_look(long long results)
{
	switch (results) {
	case CLI_SUCCESS:
		return WATCH_SUCCESS;
	case CLI_WARNINGS:
		return WATCH_WARNINGS;
	case CLI_FAILURE:
		return WATCH_FAILURE;
	case CLI_SKIPPED:
	case CLI_CANCELLED:
		return WATCH_CANCELLED;
	default: /* EXCEPTION, RETRY, unknown */
		return WATCH_EXCEPTION;
	}
}

enum watch_look watch_build_look(const struct watch_build *b)
{
	if (b->buildid <= 0)
		return WATCH_IDLE;
	if (!b->complete)
		return WATCH_RUNNING;
	return watch_result_look(b->results);
}

const char *watch_build_word(const struct watch_build *b)
{
	static const char *const words[] = {"success",   "warnings", "failure",  "skipped",
					    "exception", "retry",    "cancelled"};
	if (b->buildid <= 0)
		return "idle";
	if (!b->complete)
		return "running";
	if (b->results >= 0 && b->results < (long long)ARRAY_SIZE(words))
		return words[b->results];
	return "unknown";
}

char watch_result_mark(long long results)
{
	static const char marks[] = "swFSERC";
	if (results >= 0 && results < (long long)sizeof(marks) - 1)
		return marks[results];
	return '?';
}

int watch_format_progress(double now, double started, double eta_at, int bar_width, char *out,
			  size_t n)
{
	char dur[32], bar[WATCH_BAR_MAX + 4]; /* '[', the bar, ']', ' ', NUL */
	int pct, fill, w = bar_width;

	if (n == 0)
		return -1;
	if (w > WATCH_BAR_MAX)
		w = WATCH_BAR_MAX;
	if (w < 0)
		w = 0;
	if (eta_at <= 0 || started <= 0 || eta_at <= started) {
		cli_format_duration(started > 0 && now > started ? now - started : 0, dur,
				    sizeof(dur));
		snprintf(out, n, "running %s", dur);
		return -1;
	}
	double frac = (now - started) / (eta_at - started);
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	pct = (int)(frac * 100);
	fill = (int)(frac * w + 0.5);
	bar[0] = '\0';
	if (w > 0) {
		bar[0] = '[';
		for (int i = 0; i < w; i++)
			bar[1 + i] = i < fill ? '#' : '.';
		bar[w + 1] = ']';
		bar[w + 2] = ' ';
		bar[w + 3] = '\0';
	}
	if (now > eta_at) {
		cli_format_duration(now - eta_at, dur, sizeof(dur));
		snprintf(out, n, "%soverdue %s", bar, dur);
		return 100;
	}
	cli_format_duration(eta_at - now, dur, sizeof(dur));
	snprintf(out, n, "%s%3d%% %s left", bar, pct, dur);
	return pct;
}

bool watch_filter_match(const char *name, const char *filter)
{
	size_t fl = strlen(filter), nl = strlen(name);
	if (fl == 0)
		return true;
	for (size_t i = 0; i + fl <= nl; i++)
		if (!strncasecmp(name + i, filter, fl))
			return true;
	return false;
}

void watch_print_once(const struct watch_state *s, const char *url, const char *filter, double now,
		      FILE *f)
{
	struct cli_table t;
	char when[32];
	size_t shown = 0;

	cli_format_time(now, when, sizeof(when));
	fprintf(f, "kiln watch  %s  %s\n", url, when);
	cli_table_init(&t, 6);
	cli_table_add(&t, (const char *const[]){"BUILDER", "LAST", "BUILD", "STEP", "PROGRESS",
						"RECENT"});
	for (size_t i = 0; i < s->n; i++) {
		const struct watch_builder *w = &s->b[i];
		char number[24] = "-", progress[160] = "-", recent[WATCH_MARKS + 2] = "-";
		const char *step = "-";

		if (!watch_filter_match(w->name, filter))
			continue;
		shown++;
		if (w->last.buildid > 0)
			snprintf(number, sizeof(number), "#%lld", w->last.number);
		if (w->running.buildid > 0) {
			snprintf(number, sizeof(number), "#%lld", w->running.number);
			watch_format_progress(now, w->running.started_at, w->running.eta_at, 10,
					      progress, sizeof(progress));
			if (w->step[0])
				step = w->step;
		}
		for (size_t k = 0; k < w->nrecent; k++)
			recent[k] = watch_result_mark(w->recent[k]);
		if (w->nrecent)
			recent[w->nrecent] = '\0';
		cli_table_add(&t, (const char *const[]){w->name,
							w->running.buildid > 0
								? "running"
								: watch_build_word(&w->last),
							number, step, progress, recent});
	}
	if (shown)
		cli_table_print(&t, f);
	else
		fprintf(f, "%s\n", *filter ? "no builder matches the filter" : "no builders");
	if (s->dropped)
		fprintf(f, "(%zu more builders not shown)\n", s->dropped);
	cli_table_release(&t);
}
