/*
 * Running a step: its rows, its stdio log (masked), its remote commands,
 * interrupts, and the table of step kinds (steps/step.h).
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/interp.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/events-logs.h"
#include "master/events.h"
#include "master/events-steps.h"
#include "master/logmask.h"
#include "master/master.h"
#include "master/numbers.h"
#include "master/steps/step.h"
#include "master/tsdb.h"
#include "proto/msg.h"

/* One line per kind of step, in enum config_step_kind's order. */
static const struct step_kind *const step_kinds[] = {
	[CONFIG_STEP_SHELL] = &step_kind_shell,
	[CONFIG_STEP_TRIGGER] = &step_kind_trigger,
	[CONFIG_STEP_PATCH] = &step_kind_patch,
	[CONFIG_STEP_GIT] = &step_kind_git,
	[CONFIG_STEP_COMPILE] = &step_kind_compile,
	[CONFIG_STEP_FILE_UPLOAD] = &step_kind_file_upload,
	[CONFIG_STEP_DIRECTORY_UPLOAD] = &step_kind_directory_upload,
	[CONFIG_STEP_FILE_DOWNLOAD] = &step_kind_file_download,
	[CONFIG_STEP_STRING_DOWNLOAD] = &step_kind_string_download,
	[CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD] = &step_kind_json_properties_download,
	[CONFIG_STEP_TEST] = &step_kind_test,
	[CONFIG_STEP_HG] = &step_kind_hg,
	[CONFIG_STEP_SVN] = &step_kind_svn,
	[CONFIG_STEP_BZR] = &step_kind_bzr,
	[CONFIG_STEP_DARCS] = &step_kind_darcs,
	[CONFIG_STEP_CVS] = &step_kind_cvs,
	[CONFIG_STEP_SETPROP] = &step_kind_setprop,
	[CONFIG_STEP_PROPCMD] = &step_kind_propcmd,
	[CONFIG_STEP_LOG] = &step_kind_log,
	[CONFIG_STEP_MASTERSHELL] = &step_kind_mastershell,
	[CONFIG_STEP_TREE_SIZE] = &step_kind_tree_size, /* slice "measure" */
	[CONFIG_STEP_DEB_BUILD] = &step_kind_deb_build,
	[CONFIG_STEP_DEB_LINTIAN] = &step_kind_deb_lintian,
};

const struct step_kind *step_kind_of(enum config_step_kind kind)
{
	if ((size_t)kind >= ARRAY_SIZE(step_kinds))
		return NULL;
	return step_kinds[kind];
}

static struct db *step_db(const struct step *st)
{
	return st->b->e->m->db;
}

/* Log events (events-logs.c) only when a /ws path could want one: a log
 * event is not numbered when nobody wants it, and its key is not worth
 * building then (every append calls this). */
static void step_event_log(struct master *m, int64_t logid, enum events_log_kind kind)
{
	if (events_wanted_like(m, "logs/*/*"))
		events_log(m, logid, kind); /* slice "uilog" */
}

/* Step events (events-steps.c), their keys and row built only when a /ws
 * path could want one; else only their sequence numbers move (n events
 * under two keys each), as events-steps.c does when nobody listens. */
static bool step_events_wanted(struct master *m)
{
	return events_wanted_like(m, "builds/*/steps/*/*") || events_wanted_like(m, "steps/*/*");
}

static void step_event_started(struct master *m, int64_t buildid, int64_t stepid)
{
	if (step_events_wanted(m)) {
		events_step_started(m, buildid, stepid); /* slice "uibuild" */
		return;
	}
	for (int i = 0; i < 4; i++)
		events_count(m);
}

static void step_event_finished(struct master *m, int64_t buildid, int64_t stepid)
{
	if (step_events_wanted(m)) {
		events_step_finished(m, buildid, stepid); /* slice "uibuild" */
		return;
	}
	for (int i = 0; i < 2; i++)
		events_count(m);
}

/* ------------------------------------------------------------------ logs */

/* logmask's output (secret values already masked: master/logmask.h) into
 * stream log logid: a stream character before each line, a missing final
 * newline added. */
static void step_log_store_to(struct step *st, int64_t logid, char stream, const char *text,
			      size_t len)
{
	struct build *b = st->b;
	if (!logid || !len || b->db_failed)
		return;
	/* Each line gains a stream character, and a last line without one its
	 * newline: sized once (lines counted first), then filled in place. */
	const char *end = text + len;
	size_t lines = 0;
	for (const char *q = text; q < end && (q = memchr(q, '\n', (size_t)(end - q))); q++)
		lines++;
	bool open_end = end[-1] != '\n';
	size_t n = len + lines + (open_end ? 2 : 0);
	char *out = xmalloc(n), *o = out;
	for (const char *p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
		*o++ = stream;
		memcpy(o, p, k);
		o += k;
		p += k;
	}
	if (open_end)
		*o++ = '\n';
	build_db_check(b, db_log_append(step_db(st), logid, out, (size_t)(o - out)),
		       "append to log");
	free(out);
	step_event_log(b->e->m, logid, EVENTS_LOG_APPEND);
	/* output grew: the step's "updated" event (rate limited) */
	events_step_updated(b->e->m, b->buildid, st->stepid);
}

static void step_log_store(void *ud, char stream, const char *text, size_t len)
{
	struct step *st = ud;
	step_log_store_to(st, st->logid, stream, text, len);
}

/* A masker for one log: the build's secrets' patterns (the master's
 * config, the same for its whole life) are made once, at its first log,
 * and shared by all its logs' maskers (logmask_new_shared). */
static struct logmask *step_new_mask(struct step *st, logmask_emit_fn sink, void *ud)
{
	struct build *b = st->b;
	if (!b->maskset) {
		const struct config *cfg = b->cfg;
		b->maskset = logmask_set_new((const char *const *)cfg->secrets, cfg->nsecrets);
	}
	return logmask_new_shared(b->maskset, sink, ud);
}

/* Output in pieces as it arrives: secrets reach commands (tokens in
 * environments) and must not reach logs, however the worker cut the
 * output (logmask holds back what may begin a secret). */
void step_log(struct step *st, char stream, const char *text, size_t len)
{
	if (stream == 'o')
		step_numbers_feed(st, text, len); /* slice "measure" */
	if (!st->logid || !len || st->b->db_failed)
		return;
	if (!st->mask)
		st->mask = step_new_mask(st, step_log_store, st);
	logmask_feed(st->mask, stream, text, len);
}

/* Stores what the masker holds (a line of the master's own follows, or
 * the step ends). */
static void step_log_flush(struct step *st)
{
	if (st->mask)
		logmask_flush(st->mask);
}

void step_log_header(struct step *st, const char *fmt, ...)
{
	struct buf t;
	buf_init(&t, 1 << 16);
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vaddf(&t, fmt, ap);
	va_end(ap);
	if (r < 0) {
		buf_reset(&t);
		r = buf_adds(&t, "[header too long: dropped]");
	}
	if (r >= 0) {
		step_log_flush(st);
		step_log(st, 'h', t.ptr, t.len);
		step_log_flush(st);
	}
	buf_release(&t);
}

int step_add_log(struct step *st, const char *name, char type, int64_t *ret_logid)
{
	int r = build_db_check(st->b, db_log_add(step_db(st), st->stepid, name, type, ret_logid),
			       "add log");
	if (r >= 0)
		step_event_log(st->b->e->m, *ret_logid, EVENTS_LOG_NEW);
	return r;
}

/* The sink of a text log's masker: plain lines, no stream character. */
struct step_text_sink {
	struct step *st;
	int64_t logid;
	int r;
};

static void step_text_store(void *ud, char stream, const char *text, size_t len)
{
	(void)stream;
	struct step_text_sink *k = ud;
	if (k->r < 0 || !len)
		return;
	k->r = build_db_check(k->st->b, db_log_append(step_db(k->st), k->logid, text, len),
			      "append to log");
	step_event_log(k->st->b->e->m, k->logid, EVENTS_LOG_APPEND);
}

int step_log_text(struct step *st, int64_t logid, const char *text, size_t len)
{
	if (st->b->db_failed)
		return KILN_EDB;
	struct step_text_sink k = {st, logid, 0};
	struct logmask *mask = step_new_mask(st, step_text_store, &k);
	logmask_feed(mask, 'o', text, len);
	logmask_flush(mask);
	logmask_free(mask);
	return k.r;
}

int step_log_close(struct step *st, int64_t logid)
{
	int r = build_db_check(st->b, db_log_finish(step_db(st), logid), "finish log");
	step_event_log(st->b->e->m, logid, EVENTS_LOG_FINISHED);
	return r;
}

void step_set_description(struct step *st, const char *desc)
{
	if (st->fixed_desc)
		return; /* master.lua's description wins over the kind's */
	free(st->desc);
	st->desc = xstrdup(desc);
	step_set_state(st, desc);
}

void step_set_state(struct step *st, const char *text)
{
	build_db_check(st->b, db_step_set_state(step_db(st), st->stepid, text), "set step state");
	events_step_updated(st->b->e->m, st->b->buildid, st->stepid); /* slice "board" */
}

void step_set_property(struct step *st, const char *name, json_t *value, const char *source)
{
	build_set_property(st->b, name, value, source);
}

int step_record_number(struct step *st, const char *name, double value)
{
	struct build *b = st->b;
	struct master *m = b->e->m;
	int r = numbers_record(m, b->builderid, b->buildid, st->stepid, name, value);
	if (r == -EINVAL) {
		step_log_header(st, "cannot record number '%s' = %g: invalid name or value", name,
				value);
		return r;
	}
	if (r < 0)
		return build_db_check(b, r, "record a number");
	r = tsdb_record(m->tsdb, b->bcfg->name, name, value, clock_wall());
	if (r < 0)
		log_warn("build=%lld cannot push number '%s': %s", (long long)b->buildid, name,
			 err_str(r));
	return 0;
}

void step_add_url(struct step *st, const char *name, const char *url)
{
	build_db_check(st->b, db_step_add_url(step_db(st), st->stepid, name, url), "add url");
	events_step_updated(st->b->e->m, st->b->buildid, st->stepid); /* slice "board" */
}

/* ------------------------------------------------- logfiles (slice "logfiles") */

/* One of cfg->logfiles while the step runs: the worker tails the file into
 * `log` updates [name, [text, offsets, times]], stored as a stream log of
 * stdout lines (Buildbot's addToLog), masked like stdio. */
struct step_logfile {
	struct step *st;
	char *path;           /* owned: the filename, rendered at step start */
	int64_t logid;        /* 0 until made (lazylogfiles: at its first text) */
	struct logmask *mask; /* owned, made at the first text */
};

/* A rendered logfile path, as checkconfig checks a plain one: not empty,
 * at most KILN_MAX_LOGFILE_PATH bytes, no control characters, relative to
 * the workdir, no '..' component.  0, or KILN_ECONFIG with a line in the
 * log naming the log and the path. */
static int step_logfile_path_check(struct step *st, const char *name, const char *path)
{
	const char *why = NULL;
	switch (str_relpath_check(path, strlen(path), KILN_MAX_LOGFILE_PATH, true)) {
	case STR_RELPATH_OK:
		return 0;
	case STR_RELPATH_EMPTY:
		why = "is empty";
		break;
	case STR_RELPATH_TOO_LONG:
		why = "is too long";
		break;
	case STR_RELPATH_CONTROL:
		why = "holds control characters";
		break;
	case STR_RELPATH_ABSOLUTE:
		step_log_header(st,
				"logfiles.%s: the rendered path '%.200s' must be relative to "
				"the step's workdir",
				name, path);
		return KILN_ECONFIG;
	case STR_RELPATH_DOTDOT:
		step_log_header(st, "logfiles.%s: the rendered path '%.200s' must not contain '..'",
				name, path);
		return KILN_ECONFIG;
	}
	step_log_header(st, "logfiles.%s: the rendered path %s", name, why);
	return KILN_ECONFIG;
}

/* At step start: the logfiles' paths rendered (interpolate() or a function
 * of the build's properties) and checked.  0, or a negative error with a
 * line in the log (the step then ends EXCEPTION). */
static int step_logfiles_render(struct step *st)
{
	const struct config_step *s = st->cfg;
	if (!s->nlogfiles)
		return 0;
	st->logfiles = xcalloc(s->nlogfiles, sizeof(*st->logfiles));
	for (size_t i = 0; i < s->nlogfiles; i++) {
		struct step_logfile *lf = &st->logfiles[i];
		const char *name = s->logfiles[i].name;
		lf->st = st;
		_cleanup_free_ char *what = xasprintf("logfiles.%s", name);
		int r = step_render(st, &s->logfiles[i].filename, what, &lf->path);
		if (r < 0)
			return r;
		if (!lf->path)
			lf->path = xstrdup("");
		r = step_logfile_path_check(st, name, lf->path);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The first shell command of the step makes its logfiles' logs. */
static int step_logfiles_open(struct step *st)
{
	const struct config_step *s = st->cfg;
	if (st->logfiles_open || !s->nlogfiles)
		return 0;
	st->logfiles_open = true;
	for (size_t i = 0; !s->lazylogfiles && i < s->nlogfiles; i++) {
		int r = step_add_log(st, s->logfiles[i].name, 's', &st->logfiles[i].logid);
		if (r < 0)
			return r;
	}
	return 0;
}

/* logfiles in start_command's args as Buildbot sends them: NAME = path, or
 * NAME = {filename, follow} when following. */
static void step_logfiles_pack(struct step *st, struct proto_enc *a)
{
	const struct config_step *s = st->cfg;
	proto_pack_map(a, (uint32_t)s->nlogfiles);
	for (size_t i = 0; i < s->nlogfiles; i++) {
		const struct config_logfile *lf = &s->logfiles[i];
		const char *path = st->logfiles[i].path;
		proto_pack_str(a, lf->name);
		if (!lf->follow) {
			proto_pack_str(a, path);
			continue;
		}
		proto_pack_map(a, 2);
		proto_pack_str(a, "filename");
		proto_pack_str(a, path);
		proto_pack_str(a, "follow");
		proto_pack_bool(a, true);
	}
}

static void step_logfile_store(void *ud, char stream, const char *text, size_t len)
{
	struct step_logfile *lf = ud;
	step_log_store_to(lf->st, lf->logid, stream, text, len);
}

/* A `log` update the step cannot take: one header line each, the first
 * KILN_MAX_LOGFILE_REFUSED times (a worker sending many is not a reason
 * to grow stdio). */
static void step_logfile_refuse(struct step *st, const char *why, const struct str *name)
{
	if (st->logfiles_refused >= KILN_MAX_LOGFILE_REFUSED)
		return;
	char shown[KILN_MAX_LOGFILE_NAME + 1];
	size_t n = 0;
	for (size_t i = 0; name && i < name->len && n + 1 < sizeof(shown); i++) {
		unsigned char c = (unsigned char)name->p[i];
		shown[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	shown[n] = '\0';
	const char *more = ++st->logfiles_refused == KILN_MAX_LOGFILE_REFUSED
				   ? " (further refusals not shown)"
				   : "";
	if (name)
		step_log_header(st, "log update refused: %s '%s'%s", why, shown, more);
	else
		step_log_header(st, "log update refused: %s%s", why, more);
}

/* ["log", [name, [text, offsets, times]]] (or [name, text]) from the
 * worker: text goes to the declared log of that name. */
static void step_logfile_update(struct step *st, const msgpack_object *value)
{
	const struct config_step *s = st->cfg;
	struct str name, text;
	if (value->type != MSGPACK_OBJECT_ARRAY || value->via.array.size != 2 ||
	    !proto_obj_str(&value->via.array.ptr[0], &name)) {
		step_logfile_refuse(st, "not [name, text]", NULL);
		return;
	}
	const msgpack_object *t = &value->via.array.ptr[1];
	if (t->type == MSGPACK_OBJECT_ARRAY && t->via.array.size >= 1)
		t = &t->via.array.ptr[0];
	if (!proto_obj_str(t, &text)) {
		step_logfile_refuse(st, "no text for log", &name);
		return;
	}
	size_t i = 0;
	while (i < s->nlogfiles && !(strlen(s->logfiles[i].name) == name.len &&
				     !memcmp(s->logfiles[i].name, name.p, name.len)))
		i++;
	if (!st->logfiles_open || i == s->nlogfiles) {
		step_logfile_refuse(st, "the step declares no log", &name);
		return;
	}
	struct step_logfile *lf = &st->logfiles[i];
	if (!text.len || st->b->db_failed)
		return;
	if (!lf->logid && step_add_log(st, s->logfiles[i].name, 's', &lf->logid) < 0)
		return; /* the build ends EXCEPTION */
	if (!lf->mask)
		lf->mask = step_new_mask(st, step_logfile_store, lf);
	logmask_feed(lf->mask, 'o', text.p, text.len);
}

/* The step ends: what the maskers hold is stored, the logs finished. */
static void step_logfiles_close(struct step *st)
{
	for (size_t i = 0; st->logfiles_open && i < st->cfg->nlogfiles; i++) {
		struct step_logfile *lf = &st->logfiles[i];
		if (lf->mask)
			logmask_flush(lf->mask);
		if (lf->logid) {
			build_db_check(st->b, db_log_finish(step_db(st), lf->logid), "finish log");
			events_log(st->b->e->m, lf->logid, EVENTS_LOG_FINISHED); /* "uilog" */
		}
	}
}

static void step_logfiles_free(struct step *st)
{
	for (size_t i = 0; st->logfiles && i < st->cfg->nlogfiles; i++) {
		logmask_free(st->logfiles[i].mask);
		free(st->logfiles[i].path);
	}
	free(st->logfiles);
	st->logfiles = NULL;
}

/* ------------------------------------------------------- remote commands */

bool step_cmd_update_common(struct step *st, const char *key, const msgpack_object *value,
			    bool rc_line)
{
	char stream = 0;
	if (!strcmp(key, "stdout"))
		stream = 'o';
	else if (!strcmp(key, "stderr"))
		stream = 'e';
	else if (!strcmp(key, "header"))
		stream = 'h';
	if (stream) {
		/* a line-info triple [text, offsets, times], or plain text */
		const msgpack_object *t = value;
		if (value->type == MSGPACK_OBJECT_ARRAY && value->via.array.size >= 1)
			t = &value->via.array.ptr[0];
		struct str s;
		if (proto_obj_str(t, &s))
			step_log(st, stream, s.p, s.len);
		return true;
	}
	if (!strcmp(key, "rc")) {
		int64_t rc;
		if (proto_obj_int(value, &rc)) {
			st->rc = (int)rc;
			st->have_rc = true;
			if (rc_line) { /* every command's: no 64 KiB buffer, one format */
				char line[64];
				int n = snprintf(line, sizeof(line),
						 "program finished with exit code %d", st->rc);
				step_log_flush(st);
				step_log(st, 'h', line, (size_t)n);
				step_log_flush(st);
			}
		}
		return true;
	}
	return false;
}

static void step_cmd_update(void *ud, const char *key, const msgpack_object *value)
{
	struct step *st = ud;
	/* an upload_file reading a file for the step is not a program: its rc
	 * is kept, but no "program finished" line follows the step's own */
	bool rc_line = !st->upload_ops;
	if (!step_cmd_update_common(st, key, value, rc_line) && !strcmp(key, "log"))
		step_logfile_update(st, value); /* slice "logfiles" */
	if (st->cmd_ops && st->cmd_ops->update)
		st->cmd_ops->update(st, key, value);
}

static void step_cmd_complete(void *ud, int status, const char *failure)
{
	struct step *st = ud;
	const struct step_cmd_ops *ops = st->cmd_ops;
	st->cmd = NULL;
	st->cmd_ops = NULL;
	st->upload_ops = NULL;
	if (st->interrupting) {
		st->interrupting = false;
		uv_timer_stop(&st->b->interrupt_timer);
	}
	ops->done(st, status, failure);
}

/* An upload's chunks go to the kind that asked for them; refused else. */
static void step_cmd_write(void *ud, const char *data, size_t len, struct rcmd_answer *a)
{
	struct step *st = ud;
	if (st->upload_ops)
		st->upload_ops->write(st, data, len, a);
	else
		rcmd_answer_send(a, KILN_EPROTO, "no upload expected", NULL, 0);
}

static void step_cmd_close_writer(void *ud, struct rcmd_answer *a)
{
	struct step *st = ud;
	if (st->upload_ops)
		st->upload_ops->close_writer(st, a);
	else
		rcmd_answer_send(a, KILN_EPROTO, "no upload expected", NULL, 0);
}

static const struct rcmd_ops step_rcmd_ops = {.update = step_cmd_update,
					      .complete = step_cmd_complete,
					      .write = step_cmd_write,
					      .close_writer = step_cmd_close_writer};

int step_command(struct step *st, const char *name, struct proto_enc *args, uint32_t nargs,
		 const struct step_cmd_ops *ops)
{
	struct build *b = st->b;
	st->rc = 0;
	st->have_rc = false;
	st->cmd_ops = ops;
	int r = wconn_start_command(b->w, name, b->bcfg->name, args, nargs, &step_rcmd_ops, st,
				    &st->cmd);
	if (r < 0) {
		st->cmd = NULL;
		st->cmd_ops = NULL;
		b->lost = b->lost || b->w->closed;
		step_log_header(st, "cannot start the command on the worker: %s", err_str(r));
	}
	return r;
}

int step_command_owned(struct step *st, const char *name, struct proto_enc *args, uint32_t nargs,
		       const struct rcmd_ops *rops, void *ud, const struct step_cmd_ops *ops)
{
	struct build *b = st->b;
	st->rc = 0;
	st->have_rc = false;
	st->cmd_ops = ops;
	int r = wconn_start_command(b->w, name, b->bcfg->name, args, nargs, rops, ud, &st->cmd);
	if (r < 0) {
		st->cmd = NULL;
		st->cmd_ops = NULL;
		b->lost = b->lost || b->w->closed;
		step_log_header(st, "cannot start the command on the worker: %s", err_str(r));
	}
	return r;
}

void step_command_ended(struct step *st)
{
	st->cmd = NULL;
	st->cmd_ops = NULL;
	if (st->interrupting) {
		st->interrupting = false;
		uv_timer_stop(&st->b->interrupt_timer);
	}
}

int step_command_upload(struct step *st, const char *name, struct proto_enc *args, uint32_t nargs,
			const struct step_cmd_ops *ops, const struct step_upload_ops *uops)
{
	int r = step_command(st, name, args, nargs, ops);
	if (r >= 0)
		st->upload_ops = uops;
	return r;
}

int step_unstarted_results(const struct step *st)
{
	return st->b->lost ? RESULTS_RETRY : RESULTS_EXCEPTION;
}

int step_command_results(struct step *st, int status, const char *failure)
{
	struct build *b = st->b;
	if (status == -ECONNRESET) {
		b->lost = true;
		step_log_header(st, "connection to worker lost: %s", failure ? failure : "closed");
		/* a build being stopped is not run again */
		return b->stop_requested ? RESULTS_CANCELLED : RESULTS_RETRY;
	}
	if (status == KILN_ETIMEOUT) {
		step_log_header(st, "worker did not confirm the interrupt; giving the command up");
		return RESULTS_CANCELLED;
	}
	if (status < 0) {
		step_log_header(st, "remote command failed: %s",
				failure ? failure : err_str(status));
		return RESULTS_EXCEPTION;
	}
	if (b->stop_requested)
		return RESULTS_CANCELLED;
	if (!st->have_rc) {
		step_log_header(st, "command ended without an exit code");
		return RESULTS_EXCEPTION;
	}
	return -1;
}

int step_rc_results(const struct step *st)
{
	const struct config_step *s = st->cfg;
	if (s->decode_rc) {
		/* Buildbot's decodeRC: a code it does not name fails the step */
		for (size_t i = 0; i < s->ndecode_rc; i++)
			if (s->decode_rc[i].rc == st->rc)
				return s->decode_rc[i].results;
		return RESULTS_FAILURE;
	}
	return st->rc == 0 ? RESULTS_SUCCESS : RESULTS_FAILURE;
}

static void step_interrupt_timeout(uv_timer_t *t)
{
	struct build *b = t->data;
	struct step *st = b->step;
	if (!st || !st->cmd)
		return;
	log_warn("build=%lld worker=%s did not answer the interrupt in %.1f s",
		 (long long)b->buildid, b->w->cfg->name, b->e->interrupt_timeout_ms / 1000.0);
	struct rcmd *c = st->cmd;
	wconn_forget_command(b->w, c);
	st->interrupting = false;
	step_cmd_complete(st, KILN_ETIMEOUT, NULL);
}

void step_interrupt(struct step *st, const char *why)
{
	struct build *b = st->b;
	if (!st->cmd || st->interrupting)
		return;
	if (wconn_interrupt(b->w, st->cmd, b->bcfg->name, why) < 0)
		return; /* connection closing: the command fails with it */
	st->interrupting = true;
	uv_timer_start(&b->interrupt_timer, step_interrupt_timeout, b->e->interrupt_timeout_ms, 0);
}

/* On a later turn after a database write failed while a command ran: the
 * command is interrupted and given up, the step ends EXCEPTION. */
static void step_db_abort(uv_timer_t *t)
{
	struct build *b = t->data;
	struct step *st = b->step;
	if (!st || !st->cmd || st->finished)
		return;
	struct rcmd *c = st->cmd;
	st->cmd = NULL;
	st->cmd_ops = NULL;
	st->upload_ops = NULL;
	st->interrupting = false;
	if (wconn_interrupt(b->w, c, b->bcfg->name, "the master cannot store the build") < 0)
		log_debug("build=%lld cannot interrupt the command", (long long)b->buildid);
	wconn_forget_command(b->w, c);
	step_finish(st, RESULTS_EXCEPTION);
}

void step_db_failed(struct step *st)
{
	if (st->cmd)
		uv_timer_start(&st->b->interrupt_timer, step_db_abort, 0, 0);
}

void step_stop(struct step *st, const char *why)
{
	if (st->finished)
		return;
	if (st->b->db_failed && st->cmd)
		return; /* step_db_abort() is pending and gives the command up */
	if (st->kind->interrupt && !step_numbers_busy(st))
		st->kind->interrupt(st, why);
	else
		step_interrupt(st, why);
}

/* ------------------------------------------------------------ renderables */

char *step_json_text(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return xstrndup(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return xasprintf("%lld", (long long)json_integer_value(v));
	case JSON_REAL: {
		/* the shortest text that reads back as the same number, as Python */
		double d = json_real_value(v);
		char buf[64];
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		if (!strpbrk(buf, ".eni"))
			return xasprintf("%s.0", buf);
		return xstrdup(buf);
	}
	case JSON_TRUE:
		return xstrdup("True");
	case JSON_FALSE:
		return xstrdup("False");
	case JSON_NULL:
		return xstrdup("None");
	default: {
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		return t ? t : xstrdup("");
	}
	}
}

/* What %(kind:a[:b])s reads: the build's properties, its sourcestamps,
 * the worker, the secrets master.lua named. */
static int step_interp_get(void *ud, enum interp_kind kind, const char *a, const char *b,
			   json_t **ret)
{
	struct step *st = ud;
	struct build *bd = st->b;
	const struct db_sourcestamp *ss;
	const char *v = NULL;
	switch (kind) {
	case INTERP_PROP: {
		json_t *p = json_object_get(bd->props, a);
		if (!p)
			return INTERP_MISSING;
		*ret = json_incref(json_array_get(p, 0));
		return *ret ? INTERP_FOUND : INTERP_MISSING;
	}
	case INTERP_SRC:
		ss = db_sourcestamp_find(bd->ss_all, bd->nss_all, a);
		if (!ss)
			return INTERP_MISSING;
		if (!strcmp(b, "branch"))
			v = ss->branch;
		else if (!strcmp(b, "revision"))
			v = ss->revision;
		else if (!strcmp(b, "repository"))
			v = ss->repository;
		else if (!strcmp(b, "project"))
			v = ss->project;
		else if (!strcmp(b, "codebase"))
			v = ss->codebase;
		break;
	case INTERP_WORKER:
		if (!strcmp(a, "basedir"))
			v = bd->w->basedir;
		else if (!strcmp(a, "system"))
			v = bd->w->nt ? "nt" : "posix";
		else if (!strcmp(a, "workername") || !strcmp(a, "name"))
			v = bd->w->cfg->name;
		break;
	case INTERP_SECRET:
		v = config_secret_value(bd->cfg, a);
		break;
	case INTERP_KW:
		break; /* no keyword arguments in master.lua's interpolate() */
	}
	if (!v)
		return INTERP_MISSING;
	*ret = json_string(v);
	return *ret ? INTERP_FOUND : INTERP_MISSING;
}

int step_render_json(struct step *st, const struct config_rstr *r, const char *what, json_t **ret)
{
	*ret = NULL;
	if (r->interp) {
		struct interp_lookup lk = {step_interp_get, st};
		char *out = NULL, *err = NULL;
		size_t len;
		/* a missing value without a default fails the step (Buildbot renders "") */
		int rc = interp_render(r->text, strlen(r->text), &lk, INTERP_STRICT, &out, &len,
				       &err);
		if (rc < 0) {
			step_log_header(st, "cannot render '%s': %s", what,
					err ? err : err_str(rc));
			free(err);
			return rc;
		}
		*ret = json_stringn(out, len);
		free(out);
		if (!*ret) {
			step_log_header(st, "cannot render '%s': the result is not UTF-8", what);
			return KILN_EPARSE;
		}
		return 0;
	}
	if (!r->fn) {
		if (r->text)
			*ret = json_string(r->text);
		return 0;
	}
	struct build *b = st->b;
	char *err = NULL;
	int rc = config_call_render(b->cfg, r->fn, b->props, ret, &err);
	if (rc < 0) {
		step_log_header(st, "cannot render '%s': %s", what, err ? err : err_str(rc));
		free(err);
		return rc;
	}
	return 0;
}

int step_render(struct step *st, const struct config_rstr *r, const char *what, char **ret)
{
	*ret = NULL;
	if (!r->fn && !r->interp) {
		if (r->text)
			*ret = xstrdup(r->text);
		return 0;
	}
	json_t *v;
	int rc = step_render_json(st, r, what, &v);
	if (rc < 0)
		return rc;
	if (json_is_array(v)) {
		step_log_header(
			st, "cannot render '%s': the function returned a list, not a string", what);
		json_decref(v);
		return KILN_ECONFIG;
	}
	*ret = step_json_text(v);
	json_decref(v);
	return 0;
}

/* ------------------------------------------------------------ shell args */

/* Packs one key of an args map and counts it, so the map header always
 * matches what follows. */
void step_pack_key(struct proto_enc *a, const char *key, uint32_t *n)
{
	proto_pack_str(a, key);
	(*n)++;
}

/* The sourcestamp as environment variables of commands (a convenience
 * beside properties): KILN_BRANCH, KILN_REVISION, ... */
static const char *const step_ss_env[] = {"KILN_BRANCH", "KILN_REVISION", "KILN_REPOSITORY",
					  "KILN_PROJECT", "KILN_CODEBASE"};

static const char *step_ss_value(const struct build *b, size_t i)
{
	const char *v[] = {b->ss_branch, b->ss_revision, b->ss_repository, b->ss_project,
			   b->ss_codebase};
	return v[i] && *v[i] ? v[i] : NULL;
}

static bool step_env_has(const struct config_env *env, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(env[i].name, name))
			return true;
	return false;
}

static int step_pack_env(struct step *st, struct proto_enc *a, const struct config_env *e)
{
	_cleanup_free_ char *what = xasprintf("env %s", e->name);
	_cleanup_free_ char *v = NULL;
	int r = step_render(st, &e->value, what, &v);
	if (r < 0)
		return r;
	proto_pack_str(a, e->name);
	if (v)
		proto_pack_str(a, v);
	else
		proto_pack_nil(a);
	return 0;
}

char *step_worker_path(struct step *st, const char *dir, const char *sub)
{
	struct build *b = st->b;
	struct wconn *w = b->w;
	if (!dir)
		dir = st->cfg->workdir ? st->cfg->workdir : "build";
	_cleanup_free_ char *wd = wconn_path(w, b->bcfg->builddir, dir, sub);
	char *path = wd ? wconn_path(w, w->basedir, wd, NULL) : NULL;
	if (!path)
		step_log_header(st, "the step's working directory path is too long");
	return path;
}

int step_shell_args(struct step *st, char *const *argv, const char *command, const char *subdir,
		    const char *stdin_text, size_t stdin_len, struct proto_enc *a,
		    uint32_t *ret_nargs)
{
	return step_shell_args_in(st, NULL, argv, command, subdir, stdin_text, stdin_len, a,
				  ret_nargs);
}

int step_shell_args_in(struct step *st, const char *dir, char *const *argv, const char *command,
		       const char *subdir, const char *stdin_text, size_t stdin_len,
		       struct proto_enc *a, uint32_t *ret_nargs)
{
	const struct config_step *s = st->cfg;
	struct build *b = st->b;
	uint32_t n = 0;
	_cleanup_free_ char *workdir = step_worker_path(st, dir, subdir);
	if (!workdir)
		return -ENAMETOOLONG;
	int r = step_logfiles_open(st); /* slice "logfiles" */
	if (r < 0)
		return r;
	step_pack_key(a, "workdir", &n);
	proto_pack_str(a, workdir);
	step_pack_key(a, "command", &n);
	if (argv) {
		uint32_t argc = 0;
		while (argv[argc])
			argc++;
		proto_pack_array(a, argc);
		for (uint32_t i = 0; i < argc; i++)
			proto_pack_str(a, argv[i]);
	} else {
		proto_pack_str(a, command);
	}
	/* the step's env, then the builder's under it, then KILN_* under both */
	const struct config_builder *bc = b->bcfg;
	step_pack_key(a, "env", &n);
	uint32_t nenv = (uint32_t)s->nenv;
	for (size_t i = 0; i < bc->nenv; i++)
		if (!step_env_has(s->env, s->nenv, bc->env[i].name))
			nenv++;
	for (size_t i = 0; i < ARRAY_SIZE(step_ss_env); i++)
		if (step_ss_value(b, i) && !step_env_has(s->env, s->nenv, step_ss_env[i]) &&
		    !step_env_has(bc->env, bc->nenv, step_ss_env[i]))
			nenv++;
	proto_pack_map(a, nenv);
	for (size_t i = 0; r >= 0 && i < s->nenv; i++)
		r = step_pack_env(st, a, &s->env[i]);
	for (size_t i = 0; r >= 0 && i < bc->nenv; i++)
		if (!step_env_has(s->env, s->nenv, bc->env[i].name))
			r = step_pack_env(st, a, &bc->env[i]);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(step_ss_env); i++)
		if (step_ss_value(b, i) && !step_env_has(s->env, s->nenv, step_ss_env[i]) &&
		    !step_env_has(bc->env, bc->nenv, step_ss_env[i])) {
			proto_pack_str(a, step_ss_env[i]);
			proto_pack_str(a, step_ss_value(b, i));
		}
	step_pack_key(a, "want_stdout", &n);
	proto_pack_bool(a, true);
	step_pack_key(a, "want_stderr", &n);
	proto_pack_bool(a, true);
	step_pack_key(a, "logfiles", &n);
	step_logfiles_pack(st, a);
	step_pack_key(a, "timeout", &n);
	if (s->timeout > 0)
		proto_pack_int(a, (int64_t)ceil(s->timeout));
	else
		proto_pack_nil(a);
	step_pack_key(a, "maxTime", &n);
	if (s->max_time > 0)
		proto_pack_int(a, (int64_t)ceil(s->max_time));
	else
		proto_pack_nil(a);
	step_pack_key(a, "sigtermTime", &n);
	proto_pack_nil(a);
	step_pack_key(a, "usePTY", &n);
	proto_pack_bool(a, false);
	step_pack_key(a, "logEnviron", &n);
	proto_pack_bool(a, false);
	step_pack_key(a, "initial_stdin", &n);
	if (stdin_text)
		proto_pack_strn(a, stdin_text, stdin_len);
	else
		proto_pack_nil(a);
	step_pack_key(a, "interruptSignal", &n);
	proto_pack_str(a, "KILL");
	*ret_nargs = n;
	return 0;
}

/* ----------------------------------------------------------- life cycle */

/* A boolean option given as a value (def) or a Lua function fn of args
 * (may be NULL) and the build's properties: 1 true, 0 false, or a negative
 * error with a line in the log (the value cannot be known). */
static int step_opt_true(struct step *st, int fn, bool def, const json_t *args, const char *what)
{
	if (!fn)
		return def;
	struct build *b = st->b;
	json_t *v = NULL;
	char *err = NULL;
	int r = config_call_fn(b->cfg, fn, args, b->props, &v, &err);
	if (r < 0) {
		step_log_header(st, "%s: %s", what, err ? err : err_str(r));
		free(err);
		return r;
	}
	/* Python's truth: false, nil, 0, "" and empty tables are false */
	bool t = !(json_is_false(v) || json_is_null(v) ||
		   (json_is_integer(v) && !json_integer_value(v)) ||
		   (json_is_real(v) && json_real_value(v) == 0.0) ||
		   (json_is_string(v) && !json_string_length(v)) ||
		   (json_is_array(v) && !json_array_size(v)) ||
		   (json_is_object(v) && !json_object_size(v)));
	json_decref(v);
	return t;
}

/* The step's state string once done: description_done (or the running
 * description), with the results when not SUCCESS. */
static char *step_done_state(struct step *st, int results)
{
	const struct config_step *s = st->cfg;
	_cleanup_free_ char *done = NULL;
	if ((s->description_done.text || s->description_done.fn) &&
	    step_render(st, &s->description_done, "description_done", &done) < 0)
		done = NULL; /* the line in the log says why; the description stays */
	const char *base = done ? done : st->desc;
	if (results == RESULTS_SUCCESS)
		return xstrdup(base);
	return xasprintf("%s (%s)", base, db_results_name(results));
}

/* hide_step_if: true, or a function of (results, properties). */
static bool step_hidden(struct step *st, int results)
{
	const struct config_step *s = st->cfg;
	if (!s->hide_fn)
		return s->hidden;
	json_t *args = json_pack("[s]", db_results_name(results));
	int r = step_opt_true(st, s->hide_fn, false, args, "hide_step_if");
	json_decref(args);
	return r > 0;
}

void step_begin(struct build *b, const struct config_step *s)
{
	struct master *m = b->e->m;
	double now = clock_wall();
	struct step *st = xcalloc(1, sizeof(*st));
	st->b = b;
	st->cfg = s;
	st->kind = step_kind_of(s->kind);
	b->step = st;

	if (!st->kind) {
		/* cannot happen: config only makes kinds the table has */
		log_error("build=%lld step '%s': no such kind of step %d", (long long)b->buildid,
			  s->name, (int)s->kind);
		b->step = NULL;
		free(st);
		build_step_ended(b, s, RESULTS_EXCEPTION, "no such kind of step");
		return;
	}
	st->desc = st->kind->describe ? st->kind->describe(st) : xasprintf("'%s'", st->kind->name);
	int r = build_db_check(
		b, db_step_begin(m->db, b->buildid, s->name, now, st->desc, &st->stepid, NULL),
		"add step");
	if (r < 0) {
		b->step = NULL;
		free(st->desc);
		free(st);
		build_step_ended(b, s, RESULTS_EXCEPTION, NULL);
		return;
	}
	step_event_started(m, b->buildid, st->stepid);
	if (build_db_check(b, db_log_add(m->db, st->stepid, "stdio", 's', &st->logid), "add log") <
	    0) {
		/* the step's output could not be stored: it does not run */
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_event_log(m, st->logid, EVENTS_LOG_NEW);
	/* slice "misc": description = ..., do_step_if = ... */
	if (s->description.text || s->description.fn) {
		char *d = NULL;
		if (step_render(st, &s->description, "description", &d) < 0) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		step_set_description(st, d);
		st->fixed_desc = true;
		free(d);
	}
	int run = step_opt_true(st, s->do_step_if_fn, !s->skip, NULL, "do_step_if");
	if (run <= 0) {
		step_finish(st, run < 0 ? RESULTS_EXCEPTION : RESULTS_SKIPPED);
		return;
	}
	if (step_logfiles_render(st) < 0) { /* slice "logfiles" */
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	st->kind->start(st);
}

static void step_release(struct step *st)
{
	events_step_forget(st->b->e->m, st->stepid); /* slice "board" */
	if (st->kind && st->kind->free)
		st->kind->free(st);
	step_numbers_free(st);
	logmask_free(st->mask);
	step_logfiles_free(st); /* slice "logfiles" */
	free(st->desc);
	free(st);
}

void step_finish(struct step *st, int results)
{
	struct build *b = st->b;
	struct master *m = b->e->m;
	double now = clock_wall();
	const struct config_step *s = st->cfg;
	if (st->finished)
		return;
	if (step_numbers_collect(st, results))
		return; /* slice "measure": files are read first, then this again */
	st->finished = true;
	if (b->db_failed)
		results = db_results_worst(results, RESULTS_EXCEPTION);
	_cleanup_free_ char *state = step_done_state(st, results);
	bool hidden = step_hidden(st, results);
	step_log_flush(st);
	if (st->logid) {
		build_db_check(b, db_log_finish(m->db, st->logid), "finish log");
		step_event_log(m, st->logid, EVENTS_LOG_FINISHED);
	}
	step_logfiles_close(st); /* slice "logfiles" */
	build_db_check(b, db_step_finish(m->db, st->stepid, results, state, hidden, now),
		       "finish step");
	step_event_finished(m, b->buildid, st->stepid);
	if (st->cmd) {
		/* a kind ending its step with a command still running */
		wconn_forget_command(b->w, st->cmd);
		st->cmd = NULL;
	}
	if (st->interrupting)
		uv_timer_stop(&b->interrupt_timer);
	b->step = NULL;
	step_release(st);
	build_step_ended(b, s, results, state);
}

void step_free(struct step *st)
{
	if (!st)
		return;
	if (st->cmd)
		wconn_forget_command(st->b->w, st->cmd);
	st->b->step = NULL;
	step_release(st);
}
