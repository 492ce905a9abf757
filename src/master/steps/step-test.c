/*
 * test { }: a command whose test results are parsed (master/testreport.h)
 * and stored as test result sets (master/testingest.h), as Buildbot's Test
 * step: from its stdout as it arrives (format), then from each report file
 * (reports), read with upload_file straight into the parser, never whole
 * in memory nor on disk.  The step's state string is "N tests, F failed,
 * S skipped"; the counts become properties and numbers.  A malformed, binary
 * or oversized report ends the step FAILURE with the parser's message.
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "master/testingest.h"
#include "proto/msg.h"

struct step_test {
	struct testingest *ti; /* the report being read (stdout's, then each file's) */
	uint64_t bytes;        /* read of it */
	int err;               /* its first error, 0 if none */
	char *errmsg;          /* owned: what that error was, NULL if none */
	bool bad;              /* a report was bad: the step fails */
	int cmd_results;       /* of the test command */
	size_t next;           /* the next report file to read */
	struct testreport_summary sum;
};

/* Starts reading a report into a new result set described by desc. */
static int step_test_open(struct step *st, const char *format, const char *desc)
{
	struct step_test *t = st->priv;
	struct build *b = st->b;
	enum testreport_format f;
	if (testreport_format_parse(format, &f) < 0)
		f = TESTREPORT_AUTO; /* cannot happen: config checks the name */
	t->bytes = 0;
	t->err = 0;
	free(t->errmsg);
	t->errmsg = NULL;
	int r = testingest_begin(b->e->m->db, b->builderid, b->buildid, st->stepid, f, desc,
				 &t->ti);
	if (r < 0)
		return build_db_check(b, r, "add a test result set");
	return 0;
}

/* More bytes of the report being read.  A bad report stops being read;
 * the error stays for step_test_close. */
static int step_test_feed(struct step *st, const char *data, size_t len)
{
	struct step_test *t = st->priv;
	if (!t->ti || t->err)
		return t->err;
	if (len > st->cfg->test->max_report_bytes - t->bytes) {
		t->err = KILN_ETOOBIG;
		t->errmsg = xasprintf("the report is larger than max_report_bytes (%lld)",
				      st->cfg->test->max_report_bytes);
		return t->err;
	}
	t->bytes += len;
	int r = testingest_feed(t->ti, data, len);
	if (r == KILN_EDB)
		build_db_check(st->b, r, "store test results");
	if (r < 0)
		t->err = r;
	return r;
}

/* Ends the report being read: its counts added to the step's, its error
 * (with a line in the log) marks the step bad.  what names the report. */
static void step_test_close(struct step *st, const char *what)
{
	struct step_test *t = st->priv;
	if (!t->ti)
		return;
	struct testreport_summary s = {0};
	_cleanup_free_ char *err = NULL;
	int r = testingest_end(t->ti, &s, &err);
	t->ti = NULL;
	if (r == KILN_EDB)
		build_db_check(st->b, r, "store test results");
	/* the master's own reason (a cap, an unreadable file) first */
	const char *msg = t->errmsg;
	if (!msg && r < 0 && r != KILN_EDB)
		msg = err ? err : err_str(r);
	if (msg) {
		step_log_header(st, "bad test report %s: %s", what, msg);
		t->bad = true;
	}
	t->sum.total += s.total;
	t->sum.passed += s.passed;
	t->sum.failed += s.failed;
	t->sum.skipped += s.skipped;
}

/* The summary as state string, properties and numbers; the step ends. */
static void step_test_end(struct step *st)
{
	struct step_test *t = st->priv;
	const struct testreport_summary *s = &t->sum;
	_cleanup_free_ char *text = testreport_summary_text(s);
	step_set_description(st, text);
	static const char *const src = "Test";
	step_set_property(st, "tests-total", json_integer(s->total), src);
	step_set_property(st, "tests-failed", json_integer(s->failed), src);
	step_set_property(st, "tests-passed", json_integer(s->passed), src);
	step_set_property(st, "tests-skipped", json_integer(s->skipped), src);
	step_record_number(st, "tests_total", (double)s->total);
	step_record_number(st, "tests_failed", (double)s->failed);
	step_record_number(st, "tests_skipped", (double)s->skipped);
	int results = t->cmd_results;
	if (s->failed || t->bad)
		results = db_results_worst(results, RESULTS_FAILURE);
	step_finish(st, results);
}

static void step_test_next(struct step *st);

static void step_test_upload_write(struct step *st, const char *data, size_t len,
				   struct rcmd_answer *a)
{
	int r = step_test_feed(st, data, len);
	/* an exception stops the worker's reading of a bad report */
	rcmd_answer_send(a, r < 0 ? r : 0, r < 0 ? "the master stopped reading the report" : NULL,
			 NULL, 0);
}

static void step_test_upload_close(struct step *st, struct rcmd_answer *a)
{
	rcmd_answer_send(a, 0, NULL, NULL, 0);
}

static void step_test_upload_done(struct step *st, int status, const char *failure)
{
	struct step_test *t = st->priv;
	_cleanup_free_ char *what = xasprintf("'%s'", st->cfg->test->reports[t->next - 1]);
	if (!t->err) {
		/* (a master that stopped a bad report knows why the command failed) */
		int results = step_command_results(st, status, failure);
		if (results == RESULTS_RETRY || results == RESULTS_CANCELLED) {
			step_test_close(st, what);
			step_finish(st, results);
			return;
		}
		if (results >= 0 || st->rc != 0) {
			/* a missing or unreadable file: the worker's lines say why */
			t->err = KILN_EPARSE;
			t->errmsg = xstrdup("the worker could not send the file");
		}
	}
	step_test_close(st, what);
	if (st->b->db_failed) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_test_next(st);
}

static const struct step_cmd_ops step_test_upload_ops = {NULL, step_test_upload_done};
static const struct step_upload_ops step_test_upload_file = {step_test_upload_write,
							     step_test_upload_close};

/* Reads the next report file, or ends the step after the last one. */
static void step_test_next(struct step *st)
{
	struct step_test *t = st->priv;
	const struct config_test *c = st->cfg->test;
	if (t->next >= c->nreports) {
		step_test_end(st);
		return;
	}
	const char *rel = c->reports[t->next++];
	_cleanup_free_ char *path = step_worker_path(st, NULL, rel);
	_cleanup_free_ char *wd = step_worker_path(st, NULL, NULL);
	if (!path || !wd) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (step_test_open(st, c->report_format, rel) < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t n = 0;
	step_pack_key(&args, "path", &n);
	proto_pack_str(&args, path);
	step_pack_key(&args, "workdir", &n);
	proto_pack_str(&args, wd);
	step_pack_key(&args, "workersrc", &n);
	proto_pack_str(&args, rel);
	/* one byte past the cap, so that an oversized report is seen as such */
	step_pack_key(&args, "maxsize", &n);
	proto_pack_int(&args, (int64_t)c->max_report_bytes + 1);
	step_pack_key(&args, "blocksize", &n);
	proto_pack_int(&args, KILN_TEST_STEP_BLOCKSIZE);
	step_pack_key(&args, "keepstamp", &n);
	proto_pack_bool(&args, false);
	int r = step_command_upload(st, "upload_file", &args, n, &step_test_upload_ops,
				    &step_test_upload_file);
	proto_enc_release(&args);
	if (r < 0) {
		t->err = r;
		t->errmsg = xstrdup("the upload did not start");
		step_test_close(st, rel);
		step_finish(st, step_unstarted_results(st));
	}
}

static void step_test_update(struct step *st, const char *key, const msgpack_object *value)
{
	struct step_test *t = st->priv;
	if (!t->ti || strcmp(key, "stdout"))
		return;
	const msgpack_object *v = value;
	if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
		v = &value->via.array.ptr[0];
	struct str s;
	if (proto_obj_str(v, &s))
		step_test_feed(st, s.p, s.len);
}

static void step_test_done(struct step *st, int status, const char *failure)
{
	struct step_test *t = st->priv;
	int results = step_command_results(st, status, failure);
	if (results >= 0) {
		step_test_close(st, "on stdout");
		step_finish(st, results);
		return;
	}
	t->cmd_results = step_rc_results(st);
	step_test_close(st, "on stdout");
	if (st->b->db_failed) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_test_next(st);
}

static const struct step_cmd_ops step_test_ops = {step_test_update, step_test_done};

static void step_test_start(struct step *st)
{
	struct step_test *t = xcalloc(1, sizeof(*t));
	st->priv = t;
	const char *format = st->cfg->test->format;
	if (format && step_test_open(st, format, "stdout") < 0) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_shell_run(st, &step_test_ops);
}

static void step_test_free(struct step *st)
{
	struct step_test *t = st->priv;
	if (!t)
		return;
	if (t->ti) {
		/* the step went away mid-report: keep what was read */
		char *err = NULL;
		if (testingest_end(t->ti, NULL, &err) < 0)
			log_debug("step=%lld test report: %s", (long long)st->stepid,
				  err ? err : "cannot end");
		free(err);
	}
	free(t->errmsg);
	free(t);
	st->priv = NULL;
}

const struct step_kind step_kind_test = {
	.kind = CONFIG_STEP_TEST,
	.name = "test",
	.describe = step_shell_describe,
	.start = step_test_start,
	.free = step_test_free,
};
