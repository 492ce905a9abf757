/*
 * Running one build: the worker_preparation step, then the builder's steps
 * in order through remote commands on one worker, storing output as it
 * arrives and combining step results with Buildbot's rules (halt, flunk,
 * warn, always_run; db_db_results_worst() orders results).  A failed database
 * write on a build's path ends the build EXCEPTION (build_db_check).
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/events.h"
#include "master/logmask.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "proto/msg.h"

/* A worker that dies on the same request this often: EXCEPTION, not RETRY. */
#define MAX_BUILD_RETRIES 3
/* The text of the build's state string naming its failed steps. */
#define BUILD_TEXT_MAX (1u << 16)

int64_t build_id(const struct build *b)
{
	return b->buildid;
}

int64_t build_request_id(const struct build *b)
{
	return b->brid;
}

struct wconn *build_worker(const struct build *b)
{
	return b->w;
}

int build_results(const struct build *b)
{
	return b->results;
}

static void build_step_done(struct build *b, int results, const char *extra);

/* On a later turn after a database write failed while a command ran: the
 * command is interrupted and given up, its step ends EXCEPTION. */
static void build_db_abort(uv_timer_t *t)
{
	struct build *b = t->data;
	struct rcmd *c = b->cmd;
	if (!c || b->finished)
		return;
	b->cmd = NULL;
	if (wconn_interrupt(b->w, c, b->bcfg->name, "the master cannot store the build") < 0)
		log_debug("build=%lld cannot interrupt the command", (long long)b->buildid);
	wconn_forget_command(b->w, c);
	build_step_done(b, RESULTS_EXCEPTION, "database write failed");
}

/* Every database write on the build's path goes through here.  A failure
 * ends the build EXCEPTION: the reason goes to the daemon log and to the
 * running step's log, or (when that cannot be written either) into the
 * build's state string; no further step starts and a running command is
 * given up on a later turn.  Returns r. */
static int build_db_check(struct build *b, int r, const char *what)
{
	if (r >= 0)
		return r;
	struct db *db = b->e->m->db;
	log_error("build=%lld cannot %s: %s", (long long)b->buildid, what, db_errmsg(db));
	if (b->db_failed || b->finished)
		return r;
	b->db_failed = true;
	b->terminate = true;
	char *reason = xasprintf("database write failed: cannot %s: %s", what, db_errmsg(db));
	bool logged = false;
	if (b->logid) {
		_cleanup_free_ char *line = xasprintf("h%s\n", reason);
		logged = db_log_append(db, b->logid, line, strlen(line)) >= 0;
	}
	if (logged)
		free(reason);
	else
		b->db_error = reason;
	if (b->cmd)
		uv_timer_start(&b->interrupt_timer, build_db_abort, 0, 0);
	return r;
}

/* "'make test'" / "'sh -c ...'": the first words of the command, as Buildbot
 * describes a shell step. */
static char *build_step_describe(const struct config_step *s)
{
	struct buf out;
	buf_init(&out, 1024);
	char *words[3] = {0};
	size_t n = 0;
	bool more = false;
	if (s->argv) {
		for (size_t i = 0; s->argv[i]; i++) {
			if (n < 2)
				words[n++] = xstrdup(s->argv[i]);
			else
				more = true;
		}
	} else if (s->command) {
		const char *p = s->command;
		while (*p) {
			while (*p == ' ' || *p == '\t' || *p == '\n')
				p++;
			if (!*p)
				break;
			const char *q = p;
			while (*q && *q != ' ' && *q != '\t' && *q != '\n')
				q++;
			if (n < 2)
				words[n++] = xstrndup(p, (size_t)(q - p));
			else
				more = true;
			p = q;
		}
	}
	/* at most two words of 60 bytes: always fits */
	int r = buf_addch(&out, '\'');
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(words[i]);
		if (r >= 0)
			r = buf_add(&out, words[i], l > 60 ? 60 : l);
		if (r >= 0 && i + 1 < n)
			r = buf_addch(&out, ' ');
		free(words[i]);
	}
	if (r >= 0 && more)
		r = buf_adds(&out, " ...");
	if (r >= 0)
		r = buf_addch(&out, '\'');
	if (r < 0) {
		buf_release(&out);
		return xstrdup("'...'");
	}
	return buf_detach(&out, NULL);
}

/* logmask's output (secret values already masked: master/logmask.h): a
 * stream character before each line, a missing final newline added. */
static void build_log_store(void *ud, char stream, const char *text, size_t len)
{
	struct build *b = ud;
	if (!b->logid || !len || b->db_failed)
		return;
	struct buf out;
	/* each line gains a stream character and at most one newline */
	buf_init(&out, xmul(len, 3) + 16);
	const char *p = text, *end = text + len;
	int r = 0;
	while (r >= 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		r = buf_addch(&out, stream);
		if (r >= 0)
			r = buf_add(&out, p, n);
		if (r >= 0)
			r = buf_addch(&out, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	if (r >= 0)
		build_db_check(b, db_log_append(b->e->m->db, b->logid, out.ptr, out.len),
			       "append to log");
	buf_release(&out);
}

/* Output of the running step, in pieces as it arrives: secrets reach
 * commands (tokens in environments) and must not reach logs, however the
 * worker cut the output (logmask holds back what may begin a secret). */
static void build_log_lines(struct build *b, char stream, const char *text, size_t len)
{
	if (!b->logid || !len || b->db_failed)
		return;
	if (!b->mask) {
		const struct config *cfg = b->e->m->cfg;
		b->mask = logmask_new((const char *const *)cfg->secrets, cfg->nsecrets,
				      build_log_store, b);
	}
	logmask_feed(b->mask, stream, text, len);
}

/* Stores what the step's masker holds (a line of the master's own follows,
 * or the step ends). */
static void build_log_flush(struct build *b)
{
	if (b->mask)
		logmask_flush(b->mask);
}

static void build_log_header(struct build *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void build_log_header(struct build *b, const char *fmt, ...)
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
		build_log_flush(b);
		build_log_lines(b, 'h', t.ptr, t.len);
		build_log_flush(b);
	}
	buf_release(&t);
}

static void build_run_next(struct build *b);

/* ------------------------------------------------------------ a shell step */

static void build_shell_update(void *ud, const char *key, const msgpack_object *value)
{
	struct build *b = ud;
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
			build_log_lines(b, stream, s.p, s.len);
		return;
	}
	if (!strcmp(key, "rc")) {
		int64_t rc;
		if (proto_obj_int(value, &rc)) {
			b->rc = (int)rc;
			b->have_rc = true;
			build_log_header(b, "program finished with exit code %d", b->rc);
		}
	}
	/* elapsed, log (logfiles), files, stat: not used by the shell step yet */
}

int build_combine(const struct config_step *s, int step_results, int build_results, bool *terminate)
{
	/* Buildbot's computeResultAndTermination */
	int possible = step_results;
	if (step_results == RESULTS_FAILURE) {
		possible = RESULTS_SUCCESS;
		if (s->warn_on_failure)
			possible = RESULTS_WARNINGS;
		if (s->flunk_on_failure)
			possible = RESULTS_FAILURE;
		if (s->halt_on_failure)
			*terminate = true;
	} else if (step_results == RESULTS_WARNINGS) {
		possible = RESULTS_WARNINGS;
	} else if (step_results == RESULTS_EXCEPTION || step_results == RESULTS_RETRY ||
		   step_results == RESULTS_CANCELLED) {
		*terminate = true;
	}
	return db_results_worst(build_results, possible);
}

/* Buildbot's updateBuildSummaryPolicy default: a step is named in the
 * build's state string when it ended EXCEPTION, RETRY or CANCELLED, or
 * FAILURE with any of the on-failure flags; never when skipped. */
static bool build_step_in_summary(const struct config_step *s, int results)
{
	switch (results) {
	case RESULTS_EXCEPTION:
	case RESULTS_RETRY:
	case RESULTS_CANCELLED:
		return true;
	case RESULTS_FAILURE:
		return s->flunk_on_failure || s->halt_on_failure || s->warn_on_failure;
	default:
		return false;
	}
}

/* Appends one step summary to the build's text; past its cap, " ..." once. */
static void build_text_add(struct build *b, const char *summary, size_t len)
{
	if (b->text_full)
		return;
	size_t sep = b->text.len ? 1 : 0;
	if (buf_room(&b->text) < sep + len + 4) {
		b->text_full = true;
		if (buf_adds(&b->text, " ...") < 0)
			buf_reset(&b->text); /* cannot happen: 4 bytes were kept free */
		return;
	}
	int r = sep ? buf_addch(&b->text, ' ') : 0;
	if (r >= 0)
		r = buf_add(&b->text, summary, len);
	if (r < 0)
		buf_reset(&b->text); /* cannot happen: the room was checked */
}

static void build_step_done(struct build *b, int results, const char *extra)
{
	struct master *m = b->e->m;
	double now = clock_wall();
	const struct config_step *s = b->scfg;
	if (b->db_failed)
		results = db_results_worst(results, RESULTS_EXCEPTION);
	const char *rname = db_results_name(results);

	_cleanup_free_ char *state = results != RESULTS_SUCCESS
					     ? xasprintf("%s (%s)", b->step_desc, rname)
					     : xstrdup(b->step_desc);
	build_log_flush(b);
	logmask_free(b->mask);
	b->mask = NULL;
	if (b->logid)
		build_db_check(b, db_log_finish(m->db, b->logid), "finish log");
	build_db_check(b, db_step_finish(m->db, b->stepid, results, state, false, now),
		       "finish step");
	if (build_step_in_summary(s, results))
		build_text_add(b, state, strlen(state));
	log_debug("build=%lld step '%s' %s%s%s", (long long)b->buildid, s->name, rname,
		  extra ? ": " : "", extra ? extra : "");

	b->results = build_combine(s, results, b->results, &b->terminate);

	free(b->step_desc);
	b->step_desc = NULL;
	b->scfg = NULL;
	b->stepid = b->logid = 0;
	b->cmd = NULL;
	if (uv_is_active((uv_handle_t *)&b->interrupt_timer))
		uv_timer_stop(&b->interrupt_timer);
	build_run_next(b);
}

static void build_shell_complete(void *ud, int status, const char *failure)
{
	struct build *b = ud;
	b->cmd = NULL;
	int results;
	if (status == -ECONNRESET) {
		b->lost = true;
		build_log_header(b, "connection to worker lost: %s", failure ? failure : "closed");
		/* a build being stopped is not run again */
		results = b->stop_requested ? RESULTS_CANCELLED : RESULTS_RETRY;
	} else if (status == KILN_ETIMEOUT) {
		build_log_header(b, "worker did not confirm the interrupt; giving the command up");
		results = RESULTS_CANCELLED;
	} else if (status < 0) {
		build_log_header(b, "remote command failed: %s",
				 failure ? failure : err_str(status));
		results = RESULTS_EXCEPTION;
	} else if (b->stop_requested) {
		results = RESULTS_CANCELLED;
	} else if (!b->have_rc) {
		build_log_header(b, "command ended without an exit code");
		results = RESULTS_EXCEPTION;
	} else {
		results = b->rc == 0 ? RESULTS_SUCCESS : RESULTS_FAILURE;
	}
	build_step_done(b, results, failure);
}

static const struct rcmd_ops shell_ops = {build_shell_update, build_shell_complete};

/* Packs one key of an args map and counts it, so the map header always
 * matches what follows. */
static void build_pack_key(struct proto_enc *a, const char *key, uint32_t *n)
{
	proto_pack_str(a, key);
	(*n)++;
}

/* The sourcestamp as environment variables of shell steps (Kiln has no
 * property interpolation yet): KILN_BRANCH, KILN_REVISION, ... */
static const char *const build_ss_env[] = {"KILN_BRANCH", "KILN_REVISION", "KILN_REPOSITORY",
					   "KILN_PROJECT", "KILN_CODEBASE"};

static const char *build_ss_value(const struct build *b, size_t i)
{
	const char *v[] = {b->ss_branch, b->ss_revision, b->ss_repository, b->ss_project,
			   b->ss_codebase};
	return v[i] && *v[i] ? v[i] : NULL;
}

static bool build_step_env_has(const struct config_step *s, const char *name)
{
	for (size_t i = 0; i < s->nenv; i++)
		if (!strcmp(s->env[i].name, name))
			return true;
	return false;
}

/* argv (NULL: the step's command) runs in workdir (NULL: the step's) with
 * stdin_text (may be NULL) as its standard input. */
static int build_pack_shell_args(struct build *b, const struct config_step *s, struct proto_enc *a,
				 uint32_t *ret_n, char *const *argv_override, const char *subdir,
				 const char *stdin_text, size_t stdin_len)
{
	struct wconn *w = b->w;
	uint32_t n = 0;
	_cleanup_free_ char *wd =
		wconn_path(w, b->bcfg->builddir, s->workdir ? s->workdir : "build", subdir);
	_cleanup_free_ char *workdir = wd ? wconn_path(w, w->basedir, wd, NULL) : NULL;
	if (!workdir)
		return -ENAMETOOLONG;
	build_pack_key(a, "workdir", &n);
	proto_pack_str(a, workdir);
	build_pack_key(a, "command", &n);
	if (argv_override) {
		uint32_t argc = 0;
		while (argv_override[argc])
			argc++;
		proto_pack_array(a, argc);
		for (uint32_t i = 0; i < argc; i++)
			proto_pack_str(a, argv_override[i]);
	} else if (s->argv) {
		uint32_t argc = 0;
		while (s->argv[argc])
			argc++;
		proto_pack_array(a, argc);
		for (uint32_t i = 0; i < argc; i++)
			proto_pack_str(a, s->argv[i]);
	} else {
		proto_pack_str(a, s->command);
	}
	build_pack_key(a, "env", &n);
	uint32_t nenv = (uint32_t)s->nenv;
	for (size_t i = 0; i < ARRAY_SIZE(build_ss_env); i++)
		if (build_ss_value(b, i) && !build_step_env_has(s, build_ss_env[i]))
			nenv++;
	proto_pack_map(a, nenv);
	for (size_t i = 0; i < s->nenv; i++) {
		proto_pack_str(a, s->env[i].name);
		if (s->env[i].value)
			proto_pack_str(a, s->env[i].value);
		else
			proto_pack_nil(a);
	}
	for (size_t i = 0; i < ARRAY_SIZE(build_ss_env); i++)
		if (build_ss_value(b, i) && !build_step_env_has(s, build_ss_env[i])) {
			proto_pack_str(a, build_ss_env[i]);
			proto_pack_str(a, build_ss_value(b, i));
		}
	build_pack_key(a, "want_stdout", &n);
	proto_pack_bool(a, true);
	build_pack_key(a, "want_stderr", &n);
	proto_pack_bool(a, true);
	build_pack_key(a, "logfiles", &n);
	proto_pack_map(a, 0);
	build_pack_key(a, "timeout", &n);
	if (s->timeout > 0)
		proto_pack_int(a, (int64_t)ceil(s->timeout));
	else
		proto_pack_nil(a);
	build_pack_key(a, "maxTime", &n);
	if (s->max_time > 0)
		proto_pack_int(a, (int64_t)ceil(s->max_time));
	else
		proto_pack_nil(a);
	build_pack_key(a, "sigtermTime", &n);
	proto_pack_nil(a);
	build_pack_key(a, "usePTY", &n);
	proto_pack_bool(a, false);
	build_pack_key(a, "logEnviron", &n);
	proto_pack_bool(a, false);
	build_pack_key(a, "initial_stdin", &n);
	if (stdin_text)
		proto_pack_strn(a, stdin_text, stdin_len);
	else
		proto_pack_nil(a);
	build_pack_key(a, "interruptSignal", &n);
	proto_pack_str(a, "KILL");
	*ret_n = n;
	return 0;
}

static void build_step_trigger(struct build *b, const struct config_step *s);

static void build_step_start(struct build *b, const struct config_step *s)
{
	struct master *m = b->e->m;
	double now = clock_wall();
	b->scfg = s;
	b->rc = 0;
	b->have_rc = false;
	if (s->kind == CONFIG_STEP_TRIGGER)
		b->step_desc = xasprintf("'trigger %s%s'", s->trigger_schedulers[0],
					 s->ntrigger_schedulers > 1 ? " ..." : "");
	else if (s->kind == CONFIG_STEP_PATCH)
		b->step_desc = xstrdup("'patch'");
	else
		b->step_desc = build_step_describe(s);
	int64_t number;
	int r = build_db_check(b, db_step_add(m->db, b->buildid, s->name, &b->stepid, &number),
			       "add step");
	if (r < 0) {
		b->results = db_results_worst(b->results, RESULTS_EXCEPTION);
		b->scfg = NULL;
		free(b->step_desc);
		b->step_desc = NULL;
		build_run_next(b);
		return;
	}
	if (build_db_check(b, db_step_start(m->db, b->stepid, now), "start step") < 0 ||
	    build_db_check(b, db_step_set_state(m->db, b->stepid, b->step_desc), "set step state") <
		    0 ||
	    build_db_check(b, db_log_add(m->db, b->stepid, "stdio", 's', &b->logid), "add log") <
		    0) {
		/* the step's output could not be stored: it does not run */
		build_step_done(b, RESULTS_EXCEPTION, "database write failed");
		return;
	}

	if (s->kind == CONFIG_STEP_TRIGGER) {
		build_step_trigger(b, s);
		return;
	}
	struct db_patch_data patch = {0};
	char *argv[8] = {0};
	char level[16];
	if (s->kind == CONFIG_STEP_PATCH) {
		r = db_buildset_patch(m->db, b->bsid, &patch);
		if (r <= 0) {
			if (r < 0)
				log_error("build=%lld cannot read the patch: %s",
					  (long long)b->buildid, db_errmsg(m->db));
			build_log_header(b, r < 0 ? "cannot read the patch" : "no patch to apply");
			build_step_done(b, r < 0 ? RESULTS_EXCEPTION : RESULTS_SKIPPED, NULL);
			return;
		}
		snprintf(level, sizeof(level), "-p%d", patch.level);
		size_t k = 0;
		if (s->patch_with_git) {
			argv[k++] = "git";
			argv[k++] = "apply";
			argv[k++] = "--verbose";
			argv[k++] = level;
		} else {
			argv[k++] = "patch";
			argv[k++] = level;
			argv[k++] = "--forward";
			argv[k++] = "--batch";
		}
		build_log_header(b, "applying a %zu-byte patch with '%s %s'", patch.len, argv[0],
				 level);
	}

	struct proto_enc args;
	proto_enc_init(&args);
	uint32_t nargs;
	r = build_pack_shell_args(b, s, &args, &nargs, s->kind == CONFIG_STEP_PATCH ? argv : NULL,
				  patch.subdir, patch.body, patch.len);
	db_patch_data_release(&patch);
	if (r < 0) {
		proto_enc_release(&args);
		build_log_header(b, "the step's working directory path is too long");
		build_step_done(b, RESULTS_EXCEPTION, NULL);
		return;
	}
	r = wconn_start_command(b->w, "shell", b->bcfg->name, &args, nargs, &shell_ops, b, &b->cmd);
	proto_enc_release(&args);
	if (r < 0) {
		b->cmd = NULL;
		b->lost = b->w->closed;
		build_log_header(b, "cannot start the command on the worker: %s", err_str(r));
		build_step_done(b, b->lost ? RESULTS_RETRY : RESULTS_EXCEPTION, NULL);
	}
}

/* ---------------------------------------------------------- a trigger step */

static void build_trigger_done(void *ud, int64_t bsid, int results)
{
	struct build *b = ud;
	if (!b->ntrig_left)
		return;
	b->ntrig_left--;
	b->trig_results = db_results_worst(b->trig_results, results);
	build_log_header(b, "triggered buildset %lld finished: %s", (long long)bsid,
			 db_results_name(results));
	if (b->ntrig_left == 0) {
		int r = b->trig_results;
		/* the worst of the triggered builds is the step's, as in Buildbot */
		if (r == RESULTS_SKIPPED)
			r = RESULTS_SUCCESS;
		build_step_done(b, r, NULL);
	}
}

static void build_step_trigger(struct build *b, const struct config_step *s)
{
	struct master *m = b->e->m;
	json_t *props = json_object();
	for (size_t i = 0; i < s->nset_properties; i++) {
		json_t *v = json_loads(s->set_properties[i].value, JSON_DECODE_ANY, NULL);
		if (v)
			json_object_set_new(props, s->set_properties[i].name,
					    json_pack("[o,s]", v, "Trigger"));
	}
	struct db_sourcestamp ss = {
		.branch = b->ss_branch,
		.revision = b->ss_revision,
		.repository = b->ss_repository,
		.project = b->ss_project,
		.codebase = b->ss_codebase,
	};
	free(b->trig_bsids);
	b->trig_bsids = xcalloc(s->ntrigger_schedulers, sizeof(*b->trig_bsids));
	b->ntrig = 0;
	b->trig_results = RESULTS_SUCCESS;
	int failed = 0;
	for (size_t i = 0; i < s->ntrigger_schedulers; i++) {
		int64_t bsid;
		int r = m->sched ? sched_trigger(m->sched, s->trigger_schedulers[i], b->buildid,
						 &ss, props, &bsid)
				 : -ENOTCONN;
		if (r < 0) {
			build_log_header(b, "cannot trigger '%s': %s", s->trigger_schedulers[i],
					 err_str(r));
			failed++;
			continue;
		}
		build_log_header(b, "triggered '%s': buildset %lld", s->trigger_schedulers[i],
				 (long long)bsid);
		b->trig_bsids[b->ntrig++] = bsid;
	}
	json_decref(props);
	if (failed || !s->wait_for_finish || b->ntrig == 0) {
		build_step_done(b, failed ? RESULTS_EXCEPTION : RESULTS_SUCCESS, NULL);
		return;
	}
	b->ntrig_left = b->ntrig;
	for (size_t i = 0; i < b->ntrig; i++)
		sched_wait(m->sched, b->trig_bsids[i], build_trigger_done, b);
	build_db_check(b, db_step_set_state(m->db, b->stepid, "waiting for triggered builds"),
		       "set step state");
}

/* -------------------------------------------------------- build lifecycle */

/* The build's state string: "build successful", or the results, the stop
 * reason, the failed steps and a database failure not in any log. */
static char *build_state_string(const struct build *b)
{
	if (b->results == RESULTS_SUCCESS && !b->db_error)
		return xstrdup("build successful");
	struct buf state;
	buf_init(&state, BUILD_TEXT_MAX + 4096);
	int r = buf_adds(&state, db_results_name(b->results));
	if (r >= 0 && b->stop_reason)
		r = buf_addf(&state, " (%.1000s)", b->stop_reason);
	if (r >= 0 && b->text.len)
		r = buf_addf(&state, " %s", b->text.ptr);
	if (r >= 0 && b->db_error)
		r = buf_addf(&state, " (%.2000s)", b->db_error);
	if (r < 0) {
		buf_release(&state);
		return xasprintf("%s (state text too long)", db_results_name(b->results));
	}
	return buf_detach(&state, NULL);
}

/* Counts one lost-worker retry of request brid; returns the count.  The
 * list holds only requests being retried and at most
 * KILN_MAX_RETRY_ENTRIES of them: past that the oldest entry goes (that
 * request may be retried a few more times, never forever). */
static int build_retry_count(struct engine *e, int64_t brid)
{
	for (size_t i = 0; i < e->nretries; i++)
		if (e->retries[i].brid == brid)
			return ++e->retries[i].n;
	if (e->nretries >= KILN_MAX_RETRY_ENTRIES) {
		memmove(e->retries, e->retries + 1, (e->nretries - 1) * sizeof(*e->retries));
		e->nretries--;
	}
	ARRAY_GROW(e->retries, e->nretries + 1, e->retries_alloc);
	e->retries[e->nretries++] = (struct retry_count){brid, 1};
	return 1;
}

/* Request brid is complete: its retry count is no longer needed. */
static void build_retry_forget(struct engine *e, int64_t brid)
{
	for (size_t i = 0; i < e->nretries; i++)
		if (e->retries[i].brid == brid) {
			memmove(e->retries + i, e->retries + i + 1,
				(e->nretries - i - 1) * sizeof(*e->retries));
			e->nretries--;
			return;
		}
}

static void build_finish(struct build *b)
{
	struct master *m = b->e->m;
	struct engine *e = b->e;
	double now = clock_wall();
	if (b->lost)
		b->results = db_results_worst(b->results, b->stop_requested ? RESULTS_CANCELLED
									    : RESULTS_RETRY);
	if (b->db_failed)
		b->results = db_results_worst(b->results, RESULTS_EXCEPTION);

	_cleanup_free_ char *state = build_state_string(b);
	build_db_check(b, db_build_finish(m->db, b->buildid, b->results, state, now),
		       "finish build");
	b->finished = true;
	events_publish_row(m, DB_BUILDS, "builds", "buildid", b->buildid, "finished");

	int req_results = b->results;
	sched_unwait(m->sched, b);
	b->ntrig_left = 0;
	if (b->results == RESULTS_RETRY) {
		int n = build_retry_count(e, b->brid);
		if (n < MAX_BUILD_RETRIES) {
			build_db_check(b, db_request_unclaim(m->db, b->brid), "requeue request");
			for (size_t i = 0; i < b->nmerged; i++) {
				build_db_check(b, db_request_unclaim(m->db, b->merged[i]),
					       "requeue request");
				build_db_check(b, db_request_set_collapsed(m->db, b->merged[i], 0),
					       "unlink a collapsed request");
			}
			req_results = RESULTS_NONE;
		} else {
			log_warn("build=%lld request %lld lost its worker %d times: giving up",
				 (long long)b->buildid, (long long)b->brid, n);
			req_results = RESULTS_EXCEPTION;
		}
	}
	if (req_results != RESULTS_NONE) {
		build_retry_forget(e, b->brid);
		/* the build's own request, then those collapsed into it: same results */
		for (size_t i = 0; i <= b->nmerged; i++) {
			int64_t brid = i == 0 ? b->brid : b->merged[i - 1];
			int64_t bsid_done = 0;
			struct db_request q = {0};
			db_request_get(m->db, brid, &q);
			build_db_check(
				b, db_request_complete(m->db, brid, req_results, now, &bsid_done),
				"complete request");
			events_request_complete(m, brid, bsid_done);
			if (!m->sched)
				continue;
			if (bsid_done)
				sched_buildset_completed(m->sched, bsid_done, RESULTS_NONE);
			else if (q.buildsetid && req_results != RESULTS_SUCCESS &&
				 req_results != RESULTS_WARNINGS && req_results != RESULTS_SKIPPED)
				sched_buildset_failing(m->sched, q.buildsetid, req_results);
		}
	}
	log_info("build=%lld builder=%s number=%lld worker=%s: %s", (long long)b->buildid,
		 b->bcfg->name, (long long)b->number, b->w->cfg->name, state);
	engine_build_done(e, b);
}

static void build_run_next(struct build *b)
{
	if (b->finished)
		return;
	build_locks_step_end(b); /* slice "locks": the step that ended lets its locks go */
	if (b->stop_requested || b->lost || b->db_failed)
		b->terminate = true;
	while (b->next_step < b->bcfg->nsteps) {
		const struct config_step *s = &b->bcfg->steps[b->next_step++];
		/* always_run steps run after failures, not when the worker or
		 * the database is gone */
		if (b->terminate && !(s->always_run && !b->lost && !b->db_failed))
			continue;
		if (!build_locks_take_step(b, s)) /* slice "locks": waits for the step's locks */
			return;
		build_step_start(b, s);
		return;
	}
	build_finish(b);
}

static void build_set_prop(struct build *b, const char *name, json_t *value, const char *source)
{
	build_db_check(b, db_build_set_property(b->e->m->db, b->buildid, name, value, source),
		       "set property");
	json_decref(value);
}

bool build_same_line(const struct build *b, const struct db_buildset_info *bi)
{
	const char *mine[] = {b->ss_codebase, b->ss_repository, b->ss_project, b->ss_branch};
	const char *theirs[] = {bi->codebase, bi->repository, bi->project, bi->branch};
	for (size_t i = 0; i < ARRAY_SIZE(mine); i++) {
		const char *x = mine[i] ? mine[i] : "", *y = theirs[i] ? theirs[i] : "";
		if (strcmp(x, y))
			return false;
	}
	return true;
}

struct build *build_start(struct engine *e, int builder_idx, struct wconn *w, int64_t brid,
			  int64_t bsid, const int64_t *merged, size_t nmerged)
{
	struct master *m = e->m;
	double now = clock_wall();
	struct build *b = xcalloc(1, sizeof(*b));
	b->e = e;
	b->bcfg = &m->cfg->builder[builder_idx];
	b->builderid = e->builderids[builder_idx];
	b->w = w;
	wconn_ref(w);
	b->brid = brid;
	b->bsid = bsid;
	b->results = RESULTS_SUCCESS;
	buf_init(&b->text, BUILD_TEXT_MAX);
	uv_timer_init(m->loop, &b->interrupt_timer);
	b->interrupt_timer.data = b;

	int r = db_build_add(m->db, b->builderid, brid, w->workerid, m->masterid, now, &b->buildid,
			     &b->number);
	if (r < 0) {
		log_error("builder=%s cannot add build: %s", b->bcfg->name, db_errmsg(m->db));
		build_free(b);
		return NULL;
	}
	build_db_check(b, db_build_set_state(m->db, b->buildid, "building"), "set state");
	events_publish_row(m, DB_BUILDS, "builds", "buildid", b->buildid, "new");
	if (nmerged) {
		b->merged = xmalloc(nmerged * sizeof(*b->merged));
		memcpy(b->merged, merged, nmerged * sizeof(*merged));
		b->nmerged = nmerged;
		for (size_t i = 0; i < nmerged; i++)
			build_db_check(b, db_request_set_collapsed(m->db, merged[i], b->buildid),
				       "link a collapsed request");
	}
	struct db_buildset_info bi;
	if (db_buildset_get(m->db, bsid, &bi) == 0) {
		b->ss_branch = TAKE_PTR(bi.branch);
		b->ss_revision = TAKE_PTR(bi.revision);
		b->ss_repository = TAKE_PTR(bi.repository);
		b->ss_project = TAKE_PTR(bi.project);
		b->ss_codebase = TAKE_PTR(bi.codebase);
		db_buildset_info_release(&bi);
	}

	/* properties: the buildset's, then the build's own */
	json_t *props = NULL;
	if (db_buildset_properties(m->db, bsid, &props) == 0 && json_is_object(props)) {
		const char *k;
		json_t *v;
		json_object_foreach(props, k, v)
		{
			if (json_is_array(v) && json_array_size(v) == 2)
				build_set_prop(b, k, json_incref(json_array_get(v, 0)),
					       json_string_value(json_array_get(v, 1))
						       ?: "Buildset");
		}
	}
	json_decref(props);
	build_set_prop(b, "buildername", json_string(b->bcfg->name), "Builder");
	build_set_prop(b, "buildnumber", json_integer(b->number), "Build");
	build_set_prop(b, "workername", json_string(w->cfg->name), "Worker");
	_cleanup_free_ char *builddir = wconn_path(w, w->basedir, b->bcfg->builddir, NULL);
	if (builddir)
		build_set_prop(b, "builddir", json_string(builddir), "Worker");

	/* Buildbot's first step: the worker is ready */
	int64_t stepid, number;
	if (build_db_check(b,
			   db_step_add(m->db, b->buildid, "worker_preparation", &stepid, &number),
			   "add step") == 0) {
		_cleanup_free_ char *st = xasprintf("worker %s ready", w->cfg->name);
		build_db_check(b, db_step_start(m->db, stepid, now), "start step");
		build_db_check(b, db_step_finish(m->db, stepid, RESULTS_SUCCESS, st, false, now),
			       "finish step");
	}
	log_info("build=%lld builder=%s number=%lld started on worker=%s", (long long)b->buildid,
		 b->bcfg->name, (long long)b->number, w->cfg->name);
	w->running++;
	b->next = e->builds;
	e->builds = b;
	if (build_locks_take(b, build_run_next)) /* slice "locks": or wait for them */
		build_run_next(b);
	return b;
}

static void build_interrupt_timeout(uv_timer_t *t)
{
	struct build *b = t->data;
	if (!b->cmd)
		return;
	log_warn("build=%lld worker=%s did not answer the interrupt in %.1f s",
		 (long long)b->buildid, b->w->cfg->name, b->e->interrupt_timeout_ms / 1000.0);
	wconn_forget_command(b->w, b->cmd);
	build_shell_complete(b, KILN_ETIMEOUT, NULL);
}

void build_stop(struct build *b, const char *reason)
{
	if (b->finished || b->stop_requested)
		return;
	b->stop_requested = true;
	b->stop_reason = xstrdup(reason && *reason ? reason : "stopped");
	log_info("build=%lld stop requested: %s", (long long)b->buildid, b->stop_reason);
	if (build_locks_stop(b)) /* slice "locks": waiting for locks: ends CANCELLED */
		return;
	if (b->ntrig_left) {
		/* a trigger step waiting: stop waiting (the triggered builds go on) */
		sched_unwait(b->e->m->sched, b);
		b->ntrig_left = 0;
		build_step_done(b, RESULTS_CANCELLED, NULL);
		return;
	}
	if (!b->cmd)
		return; /* between steps: the next step will not start */
	if (b->db_failed)
		return; /* build_db_abort() is pending on interrupt_timer and gives the command up
			 */
	if (wconn_interrupt(b->w, b->cmd, b->bcfg->name, b->stop_reason) < 0)
		return; /* connection closing: the command fails with it */
	uv_timer_start(&b->interrupt_timer, build_interrupt_timeout, b->e->interrupt_timeout_ms, 0);
}

static void build_free_cb(uv_handle_t *h)
{
	struct build *b = h->data;
	free(b);
}

void build_free(struct build *b)
{
	if (!b)
		return;
	if (b->cmd)
		wconn_forget_command(b->w, b->cmd);
	build_locks_release(b); /* slice "locks": every ending path frees the build */
	if (b->w)
		wconn_unref(b->w);
	buf_release(&b->text);
	logmask_free(b->mask);
	free(b->stop_reason);
	free(b->db_error);
	free(b->step_desc);
	sched_unwait(b->e->m->sched, b);
	free(b->merged);
	free(b->trig_bsids);
	free(b->ss_branch);
	free(b->ss_revision);
	free(b->ss_repository);
	free(b->ss_project);
	free(b->ss_codebase);
	uv_close((uv_handle_t *)&b->interrupt_timer, build_free_cb);
}

void build_worker_lost(struct build *b)
{
	b->lost = true;
}
