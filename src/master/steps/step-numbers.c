/*
 * numbers = { NAME = "regex" | { file = "path" } | function(props) } on any
 * command step (slice "measure"): the regexes scan the step's stdout as it
 * is logged (master/numscan.h), and as the step ends (step_finish) the files
 * are read from the worker with upload_file, the functions get the build's
 * properties, and every value is recorded with step_record_number().  A
 * value that is not a number is a line in the step's log, never a failure.
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/numscan.h"
#include "master/steps/step.h"
#include "proto/msg.h"

enum step_numbers_phase {
	STEP_NUMBERS_IDLE,     /* the step runs: stdout is scanned */
	STEP_NUMBERS_FETCHING, /* step_finish() waits for a file */
	STEP_NUMBERS_DONE,     /* recorded (or given up): the step may end */
};

struct step_numbers {
	struct numscan *scan; /* owned; NULL until stdout comes, or without regexes */
	bool scan_failed;     /* cannot happen: config compiled them */
	enum step_numbers_phase phase;
	int results;     /* step_finish()'s, while files are read */
	size_t next;     /* the next entry whose file may be read */
	size_t fetching; /* the entry whose file is being read */
	double *values;  /* owned: per entry, a file's number ... */
	bool *have;      /* owned: ... when it was read and is one */
	struct buf file; /* the file being read, at most KILN_NUMBERS_FILE_MAX bytes */
	bool file_over;
	int rc; /* the step's command's exit code, kept over the uploads */
	bool have_rc;
};

static struct step_numbers *step_numbers_of(struct step *st)
{
	if (!st->numbers) {
		struct step_numbers *n = xcalloc(1, sizeof(*n));
		n->values = xcalloc(st->cfg->nnumbers, sizeof(*n->values));
		n->have = xcalloc(st->cfg->nnumbers, sizeof(*n->have));
		buf_init(&n->file, KILN_NUMBERS_FILE_MAX);
		st->numbers = n;
	}
	return st->numbers;
}

/* The regexes, compiled when the first stdout comes. */
static struct numscan *step_numbers_scan(struct step *st)
{
	struct step_numbers *n = step_numbers_of(st);
	const struct config_step *s = st->cfg;
	if (n->scan || n->scan_failed)
		return n->scan;
	const char *re[KILN_STEP_NUMBERS_MAX];
	size_t nre = 0;
	for (size_t i = 0; i < s->nnumbers && nre < ARRAY_SIZE(re); i++)
		if (s->numbers[i].source == CONFIG_NUMBER_REGEX)
			re[nre++] = s->numbers[i].text;
	if (!nre) {
		n->scan_failed = true;
		return NULL;
	}
	char *err = NULL;
	if (numscan_new(re, nre, &n->scan, &err) < 0) {
		n->scan_failed = true;
		step_log_header(st, "numbers: %s", err ? err : "cannot compile the regexes");
		free(err);
	}
	return n->scan;
}

void step_numbers_feed(struct step *st, const char *text, size_t len)
{
	if (!st->cfg->nnumbers || (st->numbers && st->numbers->phase != STEP_NUMBERS_IDLE))
		return;
	struct numscan *scan = step_numbers_scan(st);
	if (scan)
		numscan_feed(scan, text, len);
}

bool step_numbers_busy(const struct step *st)
{
	return st->numbers && st->numbers->phase == STEP_NUMBERS_FETCHING;
}

/* A value's text: recorded, or a line in the log saying why not. */
static void step_numbers_text(struct step *st, const char *name, const char *text, size_t len,
			      const char *from)
{
	double v;
	if (numscan_parse(text, len, &v) < 0) {
		step_log_header(st, "numbers: '%s': %s '%.*s' is not a number", name, from,
				(int)(len > 64 ? 64 : len), text);
		return;
	}
	step_record_number(st, name, v);
}

static void step_numbers_regex(struct step *st, const struct config_number *c, size_t ire)
{
	struct step_numbers *n = st->numbers;
	const char *text;
	size_t len;
	int r = n->scan ? numscan_value(n->scan, ire, &text, &len) : 0;
	if (r == 0)
		step_log_header(st, "numbers: '%s': no line of stdout matched", c->name);
	else if (r < 0)
		step_log_header(st,
				"numbers: '%s': the value matched is over %u bytes: not a number",
				c->name, (unsigned)KILN_NUMSCAN_MAX_VALUE);
	else
		step_numbers_text(st, c->name, text, len, "the value matched");
}

static void step_numbers_fn(struct step *st, const struct config_number *c)
{
	struct build *b = st->b;
	json_t *v = NULL;
	char *err = NULL;
	int r = config_call_fn(b->cfg, c->fn, NULL, b->props, &v, &err);
	if (r < 0) {
		step_log_header(st, "numbers: '%s': %s", c->name, err ? err : err_str(r));
		free(err);
		return;
	}
	if (json_is_number(v))
		step_record_number(st, c->name, json_number_value(v));
	else if (json_is_string(v))
		step_numbers_text(st, c->name, json_string_value(v), json_string_length(v),
				  "the function returned");
	else
		step_log_header(st, "numbers: '%s': the function returned %s, not a number",
				c->name, json_is_null(v) ? "nil" : "a non-number");
	json_decref(v);
}

/* Every number, in name order. */
static void step_numbers_record(struct step *st)
{
	struct step_numbers *n = st->numbers;
	const struct config_step *s = st->cfg;
	if (n->scan) {
		numscan_finish(n->scan);
		if (numscan_error(n->scan))
			step_log_header(st, "numbers: %s", numscan_error(n->scan));
	}
	size_t ire = 0;
	for (size_t i = 0; i < s->nnumbers && !st->b->db_failed; i++) {
		const struct config_number *c = &s->numbers[i];
		switch (c->source) {
		case CONFIG_NUMBER_REGEX:
			step_numbers_regex(st, c, ire++);
			break;
		case CONFIG_NUMBER_FILE:
			if (n->have[i])
				step_record_number(st, c->name, n->values[i]);
			break;
		case CONFIG_NUMBER_FN:
			step_numbers_fn(st, c);
			break;
		}
	}
	n->phase = STEP_NUMBERS_DONE;
}

static void step_numbers_upload_write(struct step *st, const char *data, size_t len,
				      struct rcmd_answer *a)
{
	struct step_numbers *n = st->numbers;
	if (buf_add(&n->file, data, len) < 0) {
		n->file_over = true;
		rcmd_answer_send(a, KILN_ETOOBIG, "the master stopped reading the file", NULL, 0);
		return;
	}
	rcmd_answer_send(a, 0, NULL, NULL, 0);
}

static void step_numbers_upload_close(struct step *st, struct rcmd_answer *a)
{
	(void)st;
	rcmd_answer_send(a, 0, NULL, NULL, 0);
}

static bool step_numbers_fetch(struct step *st);

static void step_numbers_upload_done(struct step *st, int status, const char *failure)
{
	struct step_numbers *n = st->numbers;
	const struct config_number *c = &st->cfg->numbers[n->fetching];
	int results = n->file_over ? -1 : step_command_results(st, status, failure);
	if (n->file_over)
		step_log_header(st, "numbers: '%s': '%s' is larger than %u bytes", c->name, c->text,
				(unsigned)KILN_NUMBERS_FILE_MAX);
	else if (results >= 0 || st->rc != 0)
		step_log_header(st, "numbers: '%s': the worker could not send '%s'", c->name,
				c->text);
	else if (numscan_parse(n->file.ptr, n->file.len, &n->values[n->fetching]) < 0)
		step_log_header(st, "numbers: '%s': '%s' does not hold a number", c->name, c->text);
	else
		n->have[n->fetching] = true;
	if (results == RESULTS_RETRY || results == RESULTS_CANCELLED)
		n->next = st->cfg->nnumbers; /* no more files: the worker is gone or stopped */
	buf_reset(&n->file);
	n->file_over = false;
	if (step_numbers_fetch(st))
		return;
	step_numbers_record(st);
	st->rc = n->rc;
	st->have_rc = n->have_rc;
	step_finish(st, n->results);
}

static const struct step_cmd_ops step_numbers_upload_ops = {NULL, step_numbers_upload_done};
static const struct step_upload_ops step_numbers_upload_file = {step_numbers_upload_write,
								step_numbers_upload_close};

/* Starts reading the next file: true when one is being read. */
static bool step_numbers_fetch(struct step *st)
{
	struct step_numbers *n = st->numbers;
	const struct config_step *s = st->cfg;
	while (n->next < s->nnumbers && !st->b->lost && !st->b->db_failed) {
		size_t i = n->next++;
		const struct config_number *c = &s->numbers[i];
		if (c->source != CONFIG_NUMBER_FILE)
			continue;
		_cleanup_free_ char *path = step_worker_path(st, NULL, c->text);
		_cleanup_free_ char *wd = step_worker_path(st, NULL, NULL);
		if (!path || !wd)
			continue;
		struct proto_enc args;
		proto_enc_init(&args);
		uint32_t na = 0;
		step_pack_key(&args, "path", &na);
		proto_pack_str(&args, path);
		step_pack_key(&args, "workdir", &na);
		proto_pack_str(&args, wd);
		step_pack_key(&args, "workersrc", &na);
		proto_pack_str(&args, c->text);
		/* one byte past the cap, so that a larger file is seen as such */
		step_pack_key(&args, "maxsize", &na);
		proto_pack_int(&args, (int64_t)KILN_NUMBERS_FILE_MAX + 1);
		step_pack_key(&args, "blocksize", &na);
		proto_pack_int(&args, (int64_t)KILN_NUMBERS_FILE_MAX);
		step_pack_key(&args, "keepstamp", &na);
		proto_pack_bool(&args, false);
		n->fetching = i;
		int r = step_command_upload(st, "upload_file", &args, na, &step_numbers_upload_ops,
					    &step_numbers_upload_file);
		proto_enc_release(&args);
		if (r >= 0)
			return true;
	}
	return false;
}

bool step_numbers_collect(struct step *st, int results)
{
	if (!st->cfg->nnumbers)
		return false;
	struct step_numbers *n = step_numbers_of(st);
	if (n->phase != STEP_NUMBERS_IDLE) {
		/* ended while a file was read (a failed database write): as it is */
		n->phase = STEP_NUMBERS_DONE;
		return false;
	}
	n->phase = STEP_NUMBERS_DONE;
	if (results == RESULTS_SKIPPED || results == RESULTS_RETRY ||
	    results == RESULTS_CANCELLED || st->b->db_failed)
		return false; /* the step did not run to its end: nothing to measure */
	if (st->cmd)
		n->next = st->cfg->nnumbers; /* a kind ended with its command running: no files */
	n->phase = STEP_NUMBERS_FETCHING;
	n->results = results;
	n->rc = st->rc;
	n->have_rc = st->have_rc;
	if (step_numbers_fetch(st))
		return true;
	step_numbers_record(st);
	return false;
}

void step_numbers_free(struct step *st)
{
	struct step_numbers *n = st->numbers;
	if (!n)
		return;
	numscan_free(n->scan);
	buf_release(&n->file);
	free(n->values);
	free(n->have);
	free(n);
	st->numbers = NULL;
}
