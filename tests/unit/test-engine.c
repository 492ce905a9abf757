/*
 * Unit tests of the build engine (engine.c, workers.c, build.c) on a real
 * libuv loop and a real SQLite database in a temporary directory.  Workers
 * are fake: this file implements wsconn.h (the seam the engine sees
 * connections through), answers the attach sequence and plays scripted
 * commands.  Messages in both directions are delivered on later loop turns,
 * as the real transport does.  Every wait is bounded.
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/steps/step.h"
#include "master/engine.h"
#include "master/master.h"
#include "master/wsconn.h"
#include "proto/msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

static char tmpdir[] = "/tmp/kiln-test-engine.XXXXXX";
static int ndb;

/* ---- the fake transport (wsconn.h) ------------------------------------------------- */

enum fplan {
	PLAN_RC0,  /* output, rc 0, complete */
	PLAN_RC1,  /* output, rc 1, complete */
	PLAN_FAIL, /* complete with a failure text (step EXCEPTION) */
	PLAN_HANG, /* nothing: the test drives */
	PLAN_LOST, /* rc 0 and complete, then the connection drops */
};

struct fcmd {
	char id[24];
	char name[16];
	bool done;
};

struct ws_conn {
	struct fworker *fw;
};

struct fworker {
	struct ws_conn conn;
	const struct ws_conn_ops *ops;
	void *ud; /* the engine's wconn */
	bool opened, closing, closed;
	bool hold_attach;      /* never answer get_worker_info */
	bool answer_interrupt; /* an interrupt completes the command */
	bool mute;             /* answer nothing at all */
	bool print_error;      /* answer print with an error */
	enum fplan plan[8];
	size_t nplan, next_plan;
	struct fcmd cmds[32];
	size_t ncmds;
	int interrupts, keepalives, errors, info_asked, prints;
	int64_t seq; /* the worker's own request numbers */
};

/* a message or a close on its way to the engine */
struct fmsg {
	struct fworker *fw;
	void *data; /* owned; NULL: closed() */
	size_t len;
	struct fmsg *next;
};

static struct fmsg *fq_head, **fq_tail = &fq_head;
static uv_timer_t fq_timer;
static uv_loop_t loop;

static void fq_deliver(uv_timer_t *t)
{
	(void)t;
	while (fq_head) {
		struct fmsg *q = fq_head;
		fq_head = q->next;
		if (!fq_head)
			fq_tail = &fq_head;
		struct fworker *fw = q->fw;
		if (!q->data) {
			if (!fw->closed) {
				fw->closed = true;
				fw->ops->closed(fw->ud, &fw->conn);
			}
		} else if (!fw->closed) {
			fw->ops->message(fw->ud, &fw->conn, q->data, q->len);
		}
		free(q->data);
		free(q);
	}
	/* what was delivered may be what run_until waits for: do not block
	 * in poll on this turn */
	uv_stop(&loop);
}

static void fq_push(struct fworker *fw, struct proto_enc *enc)
{
	struct fmsg *q = xcalloc(1, sizeof(*q));
	q->fw = fw;
	if (enc) {
		q->data = xmemdup(enc->sb.data, enc->sb.size);
		q->len = enc->sb.size;
	}
	*fq_tail = q;
	fq_tail = &q->next;
	uv_timer_start(&fq_timer, fq_deliver, 0, 0);
}

static void fw_reply_nil(struct fworker *fw, int64_t seq)
{
	struct proto_enc enc;
	proto_enc_init(&enc);
	proto_enc_response_nil(&enc, seq);
	fq_push(fw, &enc);
	proto_enc_release(&enc);
}

/* the head every worker-to-master command message shares: op, seq_number,
 * command_id and the "args" key, whose value the caller packs next */
static void fw_cmd_begin(struct fworker *fw, struct proto_enc *enc, const char *op, const char *id)
{
	proto_enc_init(enc);
	proto_pack_map(enc, 4);
	proto_pack_str(enc, "op");
	proto_pack_str(enc, op);
	proto_pack_str(enc, "seq_number");
	proto_pack_int(enc, fw->seq++);
	proto_pack_str(enc, "command_id");
	proto_pack_str(enc, id);
	proto_pack_str(enc, "args");
}

/* update [[key, value]] of one string (value NULL: key "rc" with rc) */
static void fw_update(struct fworker *fw, const char *id, const char *key, const char *text, int rc)
{
	struct proto_enc enc;
	fw_cmd_begin(fw, &enc, "update", id);
	proto_pack_array(&enc, 1);
	proto_pack_array(&enc, 2);
	proto_pack_str(&enc, key);
	if (text)
		proto_pack_str(&enc, text);
	else
		proto_pack_int(&enc, rc);
	fq_push(fw, &enc);
	proto_enc_release(&enc);
}

static void fw_complete(struct fworker *fw, const char *id, const char *failure)
{
	struct proto_enc enc;
	fw_cmd_begin(fw, &enc, "complete", id);
	proto_pack_str(&enc, failure);
	fq_push(fw, &enc);
	proto_enc_release(&enc);
	for (size_t i = 0; i < fw->ncmds; i++)
		if (!strcmp(fw->cmds[i].id, id))
			fw->cmds[i].done = true;
}

/* the peer goes away */
static void fw_drop(struct fworker *fw)
{
	if (fw->closing)
		return;
	fw->closing = true;
	fq_push(fw, NULL);
}

static void fw_start_command(struct fworker *fw, const struct proto_msg *m)
{
	struct fcmd *c = &fw->cmds[fw->ncmds < 31 ? fw->ncmds++ : 31];
	memset(c, 0, sizeof(*c));
	struct str s;
	if (proto_obj_str(proto_map_get(m->root, "command_id"), &s) && s.len < sizeof(c->id))
		memcpy(c->id, s.p, s.len);
	if (proto_obj_str(proto_map_get(m->root, "command_name"), &s) && s.len < sizeof(c->name))
		memcpy(c->name, s.p, s.len);
	fw_reply_nil(fw, m->seq);
	if (!strcmp(c->name, "mkdir")) {
		fw_update(fw, c->id, "rc", NULL, 0);
		fw_complete(fw, c->id, NULL);
		return;
	}
	enum fplan p = fw->next_plan < fw->nplan ? fw->plan[fw->next_plan++] : PLAN_RC0;
	switch (p) {
	case PLAN_RC0:
	case PLAN_RC1:
	case PLAN_LOST:
		fw_update(fw, c->id, "stdout", "some output\n", 0);
		fw_update(fw, c->id, "rc", NULL, p == PLAN_RC1 ? 1 : 0);
		fw_complete(fw, c->id, NULL);
		if (p == PLAN_LOST)
			fw_drop(fw);
		break;
	case PLAN_FAIL:
		fw_complete(fw, c->id, "boom");
		break;
	case PLAN_HANG:
		break;
	}
}

int ws_conn_send(struct ws_conn *c, const void *data, size_t len)
{
	struct fworker *fw = c->fw;
	if (fw->closing || fw->closed)
		return -EPIPE;
	struct proto_msg m;
	if (proto_msg_decode(data, len, &m) < 0) {
		fw->errors++;
		return 0;
	}
	if (str_eq(m.op, "response")) {
		/* the master answers our update/complete */
		if (proto_map_get(m.root, "is_exception"))
			fw->errors++;
	} else if (fw->mute) {
		/* a worker that stopped answering */
	} else if (str_eq(m.op, "print") && fw->print_error) {
		fw->prints++;
		struct proto_enc enc;
		proto_enc_init(&enc);
		proto_enc_response_error(&enc, m.seq, "no print here");
		fq_push(fw, &enc);
		proto_enc_release(&enc);
	} else if (str_eq(m.op, "print") || str_eq(m.op, "set_worker_settings")) {
		fw->prints += str_eq(m.op, "print");
		fw_reply_nil(fw, m.seq);
	} else if (str_eq(m.op, "keepalive")) {
		fw->keepalives++;
		fw_reply_nil(fw, m.seq);
	} else if (str_eq(m.op, "get_worker_info")) {
		fw->info_asked++;
		if (!fw->hold_attach) {
			struct proto_enc enc;
			proto_enc_init(&enc);
			proto_pack_map(&enc, 3);
			proto_pack_str(&enc, "op");
			proto_pack_str(&enc, "response");
			proto_pack_str(&enc, "seq_number");
			proto_pack_int(&enc, m.seq);
			proto_pack_str(&enc, "result");
			proto_pack_map(&enc, 2);
			proto_pack_str(&enc, "basedir");
			proto_pack_str(&enc, "/wb");
			proto_pack_str(&enc, "system");
			proto_pack_str(&enc, "posix");
			fq_push(fw, &enc);
			proto_enc_release(&enc);
		}
	} else if (str_eq(m.op, "start_command")) {
		fw_start_command(fw, &m);
	} else if (str_eq(m.op, "interrupt_command")) {
		fw->interrupts++;
		fw_reply_nil(fw, m.seq);
		struct str id;
		if (fw->answer_interrupt &&
		    proto_obj_str(proto_map_get(m.root, "command_id"), &id) && id.len < 24) {
			char cid[24];
			memcpy(cid, id.p, id.len);
			cid[id.len] = '\0';
			fw_update(fw, cid, "rc", NULL, -9);
			fw_complete(fw, cid, NULL);
		}
	}
	proto_msg_release(&m);
	return 0;
}

size_t ws_conn_queued(const struct ws_conn *c)
{
	(void)c;
	return 0;
}

int ws_conn_send_droppable(struct ws_conn *c, const void *data, size_t len)
{
	return ws_conn_send(c, data, len);
}

size_t ws_conn_queued_droppable(const struct ws_conn *c)
{
	(void)c;
	return 0;
}

void ws_conn_drop_droppable(struct ws_conn *c)
{
	(void)c;
}

void ws_conn_close(struct ws_conn *c, int code, const char *reason)
{
	(void)code;
	(void)reason;
	fw_drop(c->fw);
}

const char *ws_conn_peer(const struct ws_conn *c)
{
	(void)c;
	return "127.0.0.1:1";
}

/* ---- the master ------------------------------------------------------------------------ */

struct world {
	struct master m;
	struct engine *e;
	sqlite3 *raw; /* a second connection, to read rows and install triggers */
};

#define CFG_HEAD "worker { name = 'w1', password = secret('w1') }\n"

static int world_open(struct world *w, const char *lua)
{
	memset(w, 0, sizeof(*w));
	w->m.loop = &loop;
	w->m.name = xstrdup("test:engine");
	w->m.basedir = xstrdup(tmpdir);
	char *err = NULL;
	if (config_load_string("master.lua", lua, strlen(lua), NULL, &w->m.cfg, &err) < 0) {
		TAP_FAIL("config: %s", err);
		free(err);
		return -1;
	}
	char path[256], url[300];
	snprintf(path, sizeof(path), "%s/state%d.sqlite", tmpdir, ++ndb);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (db_open(&loop, url, tmpdir, &w->m.db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return -1;
	}
	if (db_master_register(w->m.db, w->m.name, &w->m.masterid) < 0 ||
	    engine_new(&w->m, &w->e) < 0) {
		TAP_FAIL("master setup failed");
		return -1;
	}
	w->m.engine = w->e;
	w->e->interrupt_timeout_ms = 50;
	if (db_flush(w->m.db) < 0 || sqlite3_open(path, &w->raw) != SQLITE_OK) {
		TAP_FAIL("cannot open the raw connection");
		return -1;
	}
	sqlite3_busy_timeout(w->raw, 5000);
	return 0;
}

static void world_close(struct world *w)
{
	if (w->e) {
		engine_stop(w->e);
		/* deliver the closes engine_stop started */
		for (int i = 0; i < 5; i++)
			uv_run(&loop, UV_RUN_NOWAIT);
		engine_free(w->e);
	}
	sqlite3_close(w->raw);
	db_close(w->m.db);
	for (int i = 0; i < 5; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	config_free(w->m.cfg);
	free(w->m.name);
	free(w->m.basedir);
}

static bool run_timed_out;
static void run_timeout(uv_timer_t *t)
{
	(void)t;
	run_timed_out = true;
}

/* Runs the loop until cond(arg) holds or ms pass; returns cond's value. */
static bool run_until(bool (*cond)(void *), void *arg, uint64_t ms)
{
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	run_timed_out = false;
	uv_timer_start(&t, run_timeout, ms, 0);
	bool ok;
	while (!(ok = cond(arg)) && !run_timed_out)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return ok;
}

/* every queued message and close delivered */
static bool fq_empty(void *arg)
{
	(void)arg;
	return fq_head == NULL;
}

struct gone_wait {
	struct world *w;
	struct fworker *fw;
};

/* the fake worker's connection is closed and no build runs */
static bool fw_gone(void *arg)
{
	struct gone_wait *g = arg;
	return g->fw->closed && g->w->e->builds == NULL;
}

static bool wait_gone(struct world *w, struct fworker *fw)
{
	struct gone_wait g = {w, fw};
	return run_until(fw_gone, &g, TEST_GUARD_MS);
}

struct int_wait {
	const int *p;
	int want;
};

static bool int_reached(void *arg)
{
	struct int_wait *iw = arg;
	return *iw->p >= iw->want;
}

static bool wait_int(const int *p, int want)
{
	struct int_wait iw = {p, want};
	return run_until(int_reached, &iw, TEST_GUARD_MS);
}

static void fw_connect(struct world *w, struct fworker *fw)
{
	const struct ws_conn_ops *ops = engine_worker_ops(w->e);
	fw->conn.fw = fw;
	fw->ops = ops;
	if (ops->authenticate(ops->ctx, "w1", "pw", &fw->ud) < 0) {
		TAP_FAIL("authenticate refused");
		return;
	}
	fw->opened = true;
	ops->opened(fw->ud, &fw->conn);
}

static bool fw_attached(void *arg)
{
	struct fworker *fw = arg;
	struct wconn *wc = fw->ud;
	return !fw->closed && wc->attached;
}

static int64_t request(struct world *w, const char *builder)
{
	int64_t bid = engine_builder_id(w->e, builder), bsid, brid;
	struct db_buildset_new bs = {.reason = "test", .submitted_at = 1.0};
	if (db_buildset_add(w->m.db, &bs, &bid, 1, &bsid, &brid) < 0) {
		TAP_FAIL("cannot add a buildset");
		return 0;
	}
	engine_buildset_added(w->e, bsid, &bid, 1, false);
	return brid;
}

struct req_wait {
	struct world *w;
	int64_t brid;
};

static bool request_complete(void *arg)
{
	struct req_wait *rw = arg;
	struct db_request q;
	return db_request_get(rw->w->m.db, rw->brid, &q) == 0 && q.complete;
}

static int request_results(struct world *w, int64_t brid)
{
	struct db_request q;
	if (db_request_get(w->m.db, brid, &q) < 0 || !q.complete)
		return -100;
	return q.results;
}

static bool wait_request(struct world *w, int64_t brid)
{
	struct req_wait rw = {w, brid};
	return run_until(request_complete, &rw, TEST_GUARD_MS);
}

/* the latest build of a request: results (-1 unfinished) and state string */
static int build_row(struct world *w, int64_t brid, char *state, size_t n)
{
	if (db_flush(w->m.db) < 0)
		return -100;
	sqlite3_stmt *s;
	int res = -100;
	if (sqlite3_prepare_v2(w->raw,
			       "SELECT coalesce(results, -1), state_string FROM builds "
			       "WHERE buildrequestid = ? ORDER BY id DESC LIMIT 1",
			       -1, &s, NULL) != SQLITE_OK)
		return -100;
	sqlite3_bind_int64(s, 1, brid);
	if (sqlite3_step(s) == SQLITE_ROW) {
		res = sqlite3_column_int(s, 0);
		if (state)
			snprintf(state, n, "%s", (const char *)sqlite3_column_text(s, 1));
	}
	sqlite3_finalize(s);
	return res;
}

static int builds_of(struct world *w, int64_t brid)
{
	if (db_flush(w->m.db) < 0)
		return -1;
	sqlite3_stmt *s;
	int n = -1;
	if (sqlite3_prepare_v2(w->raw, "SELECT count(*) FROM builds WHERE buildrequestid = ?", -1,
			       &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, brid);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* "name=results,..." of the latest build's steps (worker_preparation left out) */
static void build_steps(struct world *w, int64_t brid, char *out, size_t n)
{
	out[0] = '\0';
	if (db_flush(w->m.db) < 0)
		return;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(w->raw,
			       "SELECT name, coalesce(results, -1) FROM steps WHERE buildid = "
			       "(SELECT max(id) FROM builds WHERE buildrequestid = ?) "
			       "AND name != 'worker_preparation' ORDER BY number",
			       -1, &s, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(s, 1, brid);
	size_t len = 0;
	while (sqlite3_step(s) == SQLITE_ROW && len < n) {
		int k = snprintf(out + len, n - len, "%s%s=%d", len ? "," : "",
				 (const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1));
		if (k < 0)
			break;
		len += (size_t)k;
	}
	sqlite3_finalize(s);
}

static int raw_exec(struct world *w, const char *sql)
{
	if (db_flush(w->m.db) < 0)
		return -1;
	char *err = NULL;
	if (sqlite3_exec(w->raw, sql, NULL, NULL, &err) != SQLITE_OK) {
		TAP_FAIL("%s: %s", sql, err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/* ---- result combination ----------------------------------------------------------------- */

/* Buildbot's computeResultAndTermination over every flag set and step result. */
TEST(combine_matrix)
{
	static const int step_results[] = {RESULTS_SUCCESS, RESULTS_WARNINGS, RESULTS_FAILURE,
					   RESULTS_EXCEPTION};
	for (int flags = 0; flags < 8; flags++) {
		struct config_step s = {
			.halt_on_failure = flags & 1,
			.flunk_on_failure = flags & 2,
			.warn_on_failure = flags & 4,
		};
		for (size_t i = 0; i < ARRAY_SIZE(step_results); i++) {
			int r = step_results[i];
			bool term = false;
			int got = build_combine(&s, r, RESULTS_SUCCESS, &term);
			int want = r;
			bool want_term = false;
			if (r == RESULTS_FAILURE) {
				want = s.flunk_on_failure  ? RESULTS_FAILURE
				       : s.warn_on_failure ? RESULTS_WARNINGS
							   : RESULTS_SUCCESS;
				want_term = s.halt_on_failure;
			} else if (r == RESULTS_EXCEPTION) {
				want_term = true;
			}
			if (got != want || term != want_term)
				TAP_FAIL("flags=%d step=%d: got %d/%d, want %d/%d", flags, r, got,
					 term, want, want_term);
		}
	}
	/* a worse earlier result stays; SKIPPED never lowers SUCCESS */
	struct config_step s = {.flunk_on_failure = true};
	bool term = false;
	CHECK_INT(build_combine(&s, RESULTS_SUCCESS, RESULTS_FAILURE, &term), RESULTS_FAILURE);
	CHECK_INT(build_combine(&s, RESULTS_SKIPPED, RESULTS_SUCCESS, &term), RESULTS_SUCCESS);
	CHECK_INT(build_combine(&s, RESULTS_WARNINGS, RESULTS_EXCEPTION, &term), RESULTS_EXCEPTION);
	CHECK_INT(build_combine(&s, RESULTS_CANCELLED, RESULTS_RETRY, &term), RESULTS_CANCELLED);
	CHECK(term);
	/* Buildbot 3.7's worst_status order */
	static const int order[] = {RESULTS_SKIPPED,  RESULTS_SUCCESS,   RESULTS_WARNINGS,
				    RESULTS_FAILURE,  RESULTS_EXCEPTION, RESULTS_RETRY,
				    RESULTS_CANCELLED};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		for (size_t j = 0; j < ARRAY_SIZE(order); j++)
			CHECK_INT(db_results_worst(order[i], order[j]), order[i > j ? i : j]);
}

/* Real builds through the fake worker: which steps ran and the build's result. */
struct flow_case {
	const char *steps; /* Lua step list */
	enum fplan plan[4];
	size_t nplan;
	const char *want_steps;
	int want;
};

TEST(build_flows)
{
	static const struct flow_case cases[] = {
		{"shell{name='a',command='true'}, shell{name='b',command='true'}",
		 {PLAN_RC0, PLAN_RC0},
		 2,
		 "a=0,b=0",
		 RESULTS_SUCCESS},
		/* flunk (default): FAILURE, later steps run */
		{"shell{name='a',command='false'}, shell{name='b',command='true'}",
		 {PLAN_RC1, PLAN_RC0},
		 2,
		 "a=2,b=0",
		 RESULTS_FAILURE},
		/* halt: later steps skipped, always_run runs */
		{"shell{name='a',command='false',halt_on_failure=true}, "
		 "shell{name='b',command='true'}, shell{name='c',command='true',always_run=true}",
		 {PLAN_RC1, PLAN_RC0},
		 2,
		 "a=2,c=0",
		 RESULTS_FAILURE},
		/* warn instead of flunk */
		{"shell{name='a',command='false',flunk_on_failure=false,warn_on_failure=true}, "
		 "shell{name='b',command='true'}",
		 {PLAN_RC1, PLAN_RC0},
		 2,
		 "a=2,b=0",
		 RESULTS_WARNINGS},
		/* neither: the failure does not count */
		{"shell{name='a',command='false',flunk_on_failure=false}, "
		 "shell{name='b',command='true'}",
		 {PLAN_RC1, PLAN_RC0},
		 2,
		 "a=2,b=0",
		 RESULTS_SUCCESS},
		/* EXCEPTION terminates; always_run still runs */
		{"shell{name='a',command='x'}, shell{name='b',command='true'}, "
		 "shell{name='c',command='true',always_run=true}",
		 {PLAN_FAIL, PLAN_RC0},
		 2,
		 "a=4,c=0",
		 RESULTS_EXCEPTION},
		/* halt + always_run failing too */
		{"shell{name='a',command='false',halt_on_failure=true}, "
		 "shell{name='c',command='false',always_run=true}",
		 {PLAN_RC1, PLAN_RC1},
		 2,
		 "a=2,c=2",
		 RESULTS_FAILURE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct flow_case *fc = &cases[i];
		char lua[1024];
		snprintf(lua, sizeof(lua),
			 CFG_HEAD "builder { name = 'b', workers = { 'w1' }, "
				  "steps = { %s } }\n",
			 fc->steps);
		struct world w;
		if (world_open(&w, lua) < 0)
			return;
		struct fworker fw = {0};
		memcpy(fw.plan, fc->plan, sizeof(fc->plan));
		fw.nplan = fc->nplan;
		fw_connect(&w, &fw);
		int64_t brid = request(&w, "b");
		CHECK(wait_request(&w, brid));
		char steps[256];
		build_steps(&w, brid, steps, sizeof(steps));
		if (strcmp(steps, fc->want_steps))
			TAP_FAIL("case %zu: steps '%s', want '%s'", i, steps, fc->want_steps);
		int got = build_row(&w, brid, NULL, 0);
		if (got != fc->want)
			TAP_FAIL("case %zu: build results %d, want %d", i, got, fc->want);
		CHECK_INT(request_results(&w, brid), fc->want);
		world_close(&w);
	}
}

/* Every on-failure flag set × SUCCESS/FAILURE/EXCEPTION from a real step,
 * followed by a plain step and an always_run one. */
TEST(build_flow_matrix)
{
	static const enum fplan plans[] = {PLAN_RC0, PLAN_RC1, PLAN_FAIL};
	static const int step_res[] = {RESULTS_SUCCESS, RESULTS_FAILURE, RESULTS_EXCEPTION};
	for (int flags = 0; flags < 8; flags++) {
		bool halt = flags & 1, flunk = flags & 2, warn = flags & 4;
		char lua[1024];
		snprintf(lua, sizeof(lua),
			 CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {\n"
				  "  shell { name = 'a', command = 'x', halt_on_failure = %s,"
				  " flunk_on_failure = %s, warn_on_failure = %s },\n"
				  "  shell { name = 'b', command = 'true' },\n"
				  "  shell { name = 'c', command = 'true', always_run = true },\n"
				  "} }\n",
			 halt ? "true" : "false", flunk ? "true" : "false",
			 warn ? "true" : "false");
		struct world w;
		if (world_open(&w, lua) < 0)
			return;
		struct fworker fw = {0};
		fw_connect(&w, &fw);
		for (size_t i = 0; i < ARRAY_SIZE(plans); i++) {
			int r = step_res[i];
			int want = r;
			bool skip_b = r == RESULTS_EXCEPTION;
			if (r == RESULTS_FAILURE) {
				want = flunk  ? RESULTS_FAILURE
				       : warn ? RESULTS_WARNINGS
					      : RESULTS_SUCCESS;
				skip_b = halt;
			}
			fw.plan[0] = plans[i];
			fw.plan[1] = fw.plan[2] = PLAN_RC0;
			fw.nplan = 3;
			fw.next_plan = 0;
			int64_t brid = request(&w, "b");
			CHECK(wait_request(&w, brid));
			char steps[128], want_steps[128];
			build_steps(&w, brid, steps, sizeof(steps));
			snprintf(want_steps, sizeof(want_steps), "a=%d,%sc=0", r,
				 skip_b ? "" : "b=0,");
			int got = build_row(&w, brid, NULL, 0);
			if (strcmp(steps, want_steps) || got != want)
				TAP_FAIL("halt=%d flunk=%d warn=%d step=%d: steps '%s' results %d, "
					 "want '%s' %d",
					 halt, flunk, warn, r, steps, got, want_steps, want);
		}
		world_close(&w);
	}
}

/* The state string names failed steps only, never skipped ones. */
TEST(state_names_failed_steps_only)
{
	struct world w;
	if (world_open(&w,
		       CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {\n"
				"  apply_patch { },\n"
				"  shell { name = 'soft', command = 'soft one', flunk_on_failure = "
				"false },\n"
				"  shell { name = 'make', command = 'make test' },\n"
				"} }\n") < 0)
		return;
	struct fworker fw = {.plan = {PLAN_RC1, PLAN_RC1}, .nplan = 2};
	fw_connect(&w, &fw);
	int64_t brid = request(&w, "b");
	CHECK(wait_request(&w, brid));
	char steps[256], state[512];
	build_steps(&w, brid, steps, sizeof(steps));
	CHECK_STR(steps, "patch=3,soft=2,make=2");
	CHECK_INT(build_row(&w, brid, state, sizeof(state)), RESULTS_FAILURE);
	CHECK_STR(state, "failure 'make test' (failure)");
	world_close(&w);
}

/* ---- workers lost ------------------------------------------------------------------------ */

static bool build_has_cmd(void *arg)
{
	struct world *w = arg;
	return w->e->builds && w->e->builds->step && w->e->builds->step->cmd;
}

/* Lost during the attach sequence: no build starts on it; the next worker runs it. */
TEST(lost_during_attach)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	int64_t brid = request(&w, "b");
	struct fworker a = {.hold_attach = true};
	fw_connect(&w, &a);
	CHECK(wait_int(&a.info_asked, 1));
	CHECK(run_until(fq_empty, NULL, TEST_GUARD_MS));
	CHECK(!((struct wconn *)a.ud)->attached);
	CHECK(w.e->builds == NULL);
	fw_drop(&a);
	CHECK(wait_gone(&w, &a));
	CHECK_INT(builds_of(&w, brid), 0);
	struct fworker b = {0};
	fw_connect(&w, &b);
	CHECK(wait_request(&w, brid));
	CHECK_INT(request_results(&w, brid), RESULTS_SUCCESS);
	world_close(&w);
}

/* Lost between steps (right after one completes) and mid-command: RETRY,
 * the request is queued again and runs on the next worker. */
TEST(lost_between_steps_and_mid_command)
{
	struct world w;
	if (world_open(&w, CFG_HEAD
		       "builder { name = 'b', workers = { 'w1' }, steps = {"
		       " shell { name = 'a', command = 'true' },"
		       " shell { name = 'c', command = 'true', always_run = true } } }\n") < 0)
		return;
	int64_t brid = request(&w, "b");
	struct fworker a = {.plan = {PLAN_LOST}, .nplan = 1};
	fw_connect(&w, &a);
	/* the build ends RETRY once the connection is gone; always_run does not run */
	CHECK(wait_gone(&w, &a));
	char state[256], steps[256];
	CHECK_INT(build_row(&w, brid, state, sizeof(state)), RESULTS_RETRY);
	build_steps(&w, brid, steps, sizeof(steps));
	CHECK_STR(steps, "a=0,c=5");
	CHECK_INT(request_results(&w, brid), -100); /* queued again */

	struct fworker b = {.plan = {PLAN_HANG}, .nplan = 1};
	fw_connect(&w, &b);
	CHECK(run_until(build_has_cmd, &w, TEST_GUARD_MS));
	fw_drop(&b);
	CHECK(wait_gone(&w, &b));
	CHECK_INT(builds_of(&w, brid), 2);
	CHECK_INT(build_row(&w, brid, NULL, 0), RESULTS_RETRY);
	CHECK(w.e->builds == NULL);

	struct fworker c = {0};
	fw_connect(&w, &c);
	CHECK(wait_request(&w, brid));
	CHECK_INT(request_results(&w, brid), RESULTS_SUCCESS);
	CHECK_INT(builds_of(&w, brid), 3);
	world_close(&w);
}

/* The connection closes at once, from the test (not on a later turn). */
static void fw_close_now(struct fworker *fw)
{
	fw->closing = fw->closed = true;
	fw->ops->closed(fw->ud, &fw->conn);
}

static bool listing_in_flight(void *arg)
{
	return ((struct world *)arg)->e->listing != NULL;
}

static bool engine_idle(void *arg)
{
	struct world *w = arg;
	return !w->e->claims && !w->e->builds;
}

/* Issue 14: the claim and the build's start are answered on the loop.  A
 * worker lost while its claim is in flight gives the request back (no
 * build); lost while its build opens, the build ends RETRY; the next
 * worker builds the request once. */
TEST(lost_while_claiming_and_opening)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	int64_t brid = request(&w, "b");
	/* the answers wait for db_async_step: one step at a time */
	db_async_hold(w.m.db, true);
	struct fworker a = {0};
	fw_connect(&w, &a);
	CHECK(run_until(listing_in_flight, &w, TEST_GUARD_MS));
	CHECK(db_async_step(w.m.db)); /* the queued builders: the claim goes */
	CHECK(w.e->claims && !w.e->builds);
	fw_close_now(&a);
	CHECK(db_async_step(w.m.db)); /* the claim's answer finds the worker gone */
	CHECK(engine_idle(&w));
	CHECK_INT(builds_of(&w, brid), 0);
	CHECK_INT(request_results(&w, brid), -100);
	struct db_request q;
	CHECK_INT(db_request_get(w.m.db, brid, &q), 0);
	CHECK(!q.claimed); /* back in the queue */

	struct fworker b = {0};
	fw_connect(&w, &b);
	CHECK(run_until(listing_in_flight, &w, TEST_GUARD_MS));
	CHECK(db_async_step(w.m.db)); /* the claim goes */
	CHECK(db_async_step(w.m.db)); /* claimed: the build asks for its row and inputs */
	CHECK(w.e->builds && w.e->builds->open && !w.e->claims);
	fw_close_now(&b);
	db_async_hold(w.m.db, false); /* the build opens without its worker, and ends */
	CHECK(run_until(engine_idle, &w, TEST_GUARD_MS));
	CHECK_INT(builds_of(&w, brid), 1);
	CHECK_INT(build_row(&w, brid, NULL, 0), RESULTS_RETRY);
	CHECK_INT(request_results(&w, brid), -100);

	struct fworker c = {0};
	fw_connect(&w, &c);
	CHECK(wait_request(&w, brid));
	CHECK_INT(request_results(&w, brid), RESULTS_SUCCESS);
	CHECK_INT(builds_of(&w, brid), 2);
	world_close(&w);
}

/* A request on branch "main" at revision rev: requests of one builder with
 * such buildsets may collapse. */
static int64_t request_on_line(struct world *w, const char *builder, const char *rev)
{
	int64_t bid = engine_builder_id(w->e, builder), bsid, brid;
	struct db_sourcestamp ss = {.branch = "main", .revision = rev};
	struct db_buildset_new bs = {
		.reason = "test", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1.0};
	if (db_buildset_add(w->m.db, &bs, &bid, 1, &bsid, &brid) < 0) {
		TAP_FAIL("cannot add a buildset");
		return 0;
	}
	engine_buildset_added(w->e, bsid, &bid, 1, false);
	return brid;
}

static bool request_claimed(struct world *w, int64_t brid)
{
	struct db_request q;
	return db_request_get(w->m.db, brid, &q) == 0 && q.claimed;
}

/* Issue 14: collapse_requests is answered on the loop too.  A worker lost
 * while the requests to collapse are claimed gives every one back; the
 * next worker builds them in one build, the newest request's. */
TEST(lost_while_collapsing)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' },"
				    " collapse_requests = true,"
				    " steps = { shell { command = 'true' } } }\n") < 0)
		return;
	int64_t r1 = request_on_line(&w, "b", "r1"), r2 = request_on_line(&w, "b", "r2");
	db_async_hold(w.m.db, true);
	struct fworker a = {0};
	fw_connect(&w, &a);
	CHECK(run_until(listing_in_flight, &w, TEST_GUARD_MS));
	CHECK(db_async_step(w.m.db)); /* the queued builders: the claim goes */
	CHECK(db_async_step(w.m.db)); /* r1 claimed: the compatible requests are read */
	CHECK(w.e->claims && !w.e->builds);
	CHECK(request_claimed(&w, r1) && !request_claimed(&w, r2));
	CHECK(db_async_step(w.m.db)); /* r2 is: its claim goes */
	CHECK(request_claimed(&w, r2));
	CHECK(w.e->claims && !w.e->builds);
	fw_close_now(&a);
	CHECK(db_async_step(w.m.db)); /* claimed, the worker gone: both given back */
	CHECK(engine_idle(&w));
	CHECK(!request_claimed(&w, r1) && !request_claimed(&w, r2));
	CHECK_INT(builds_of(&w, r1) + builds_of(&w, r2), 0);
	db_async_hold(w.m.db, false);

	struct fworker b = {0};
	fw_connect(&w, &b);
	CHECK(wait_request(&w, r1));
	CHECK(wait_request(&w, r2));
	CHECK_INT(request_results(&w, r1), RESULTS_SUCCESS);
	CHECK_INT(request_results(&w, r2), RESULTS_SUCCESS);
	CHECK_INT(builds_of(&w, r2), 1); /* the newest request's build */
	CHECK_INT(builds_of(&w, r1), 0);
	world_close(&w);
}

struct cancel_answer {
	int calls, r;
};

static void on_cancelled(void *arg, int r)
{
	struct cancel_answer *a = arg;
	a->calls++;
	a->r = r;
}

static bool cancel_answered(void *arg)
{
	return ((struct cancel_answer *)arg)->calls > 0;
}

/* Cancelling requests (JSON-RPC's cancel, cancel_superseded) is answered on
 * the loop, once: the queued ones complete CANCELLED, a missing or complete
 * one is left alone. */
TEST(cancel_requests)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	int64_t r1 = request(&w, "b"), r2 = request(&w, "b");
	int64_t ids[] = {r1, 99999, r2, r1};
	struct cancel_answer a = {0};
	CHECK_INT(engine_cancel_requests(w.e, ids, 4, "test", on_cancelled, &a), 0);
	CHECK_INT(a.calls, 0); /* not before the answers */
	CHECK(run_until(cancel_answered, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, 0);
	CHECK_INT(request_results(&w, r1), RESULTS_CANCELLED);
	CHECK_INT(request_results(&w, r2), RESULTS_CANCELLED);
	struct cancel_answer again = {0};
	CHECK_INT(engine_cancel_requests(w.e, ids, 2, NULL, on_cancelled, &again), 0);
	CHECK(run_until(cancel_answered, &again, TEST_GUARD_MS));
	CHECK_INT(again.r, 0);
	CHECK_INT(a.calls, 1);
	CHECK_INT(request_results(&w, r1), RESULTS_CANCELLED);
	world_close(&w);
}

/* A worker that dies on the same request MAX_BUILD_RETRIES times: EXCEPTION. */
TEST(retry_limit)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	int64_t brid = request(&w, "b");
	struct fworker fws[4];
	memset(fws, 0, sizeof(fws));
	for (int i = 0; i < 3; i++) {
		fws[i].plan[0] = PLAN_HANG;
		fws[i].nplan = 1;
		fw_connect(&w, &fws[i]);
		CHECK(run_until(build_has_cmd, &w, TEST_GUARD_MS));
		fw_drop(&fws[i]);
		CHECK(wait_gone(&w, &fws[i]));
	}
	CHECK_INT(builds_of(&w, brid), 3);
	CHECK_INT(request_results(&w, brid), RESULTS_EXCEPTION);
	CHECK_INT(w.e->nretries, 0); /* a completed request's count is dropped */
	world_close(&w);
}

/* Stop: a worker that never answers the interrupt gets its command given up
 * after the timeout; a worker lost during the interrupt ends it too. */
TEST(interrupt_timeout_and_lost_during_interrupt)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { name = 'a', command = 'sleep 60' },"
				    " shell { name = 'b', command = 'true' } } }\n") < 0)
		return;
	int64_t brid = request(&w, "b");
	struct fworker a = {.plan = {PLAN_HANG, PLAN_HANG}, .nplan = 2};
	fw_connect(&w, &a);
	CHECK(run_until(build_has_cmd, &w, TEST_GUARD_MS));
	char cid[24];
	snprintf(cid, sizeof(cid), "%s", w.e->builds->step->cmd->id);
	CHECK_INT(engine_stop_build(w.e, build_id(w.e->builds), "enough"), 0);
	CHECK(wait_request(&w, brid));
	CHECK_INT(a.interrupts, 1);
	CHECK_INT(request_results(&w, brid), RESULTS_CANCELLED);
	char steps[128], state[256];
	build_steps(&w, brid, steps, sizeof(steps));
	CHECK_STR(steps, "a=6");
	CHECK_INT(build_row(&w, brid, state, sizeof(state)), RESULTS_CANCELLED);
	CHECK_STR(state, "cancelled (enough) 'sleep 60' (cancelled)");
	/* the worker answers late: an unknown command, no crash */
	int errors = a.errors;
	fw_complete(&a, cid, NULL);
	CHECK(wait_int(&a.errors, errors + 1));

	/* lost while the interrupt is pending: CANCELLED, not run again */
	brid = request(&w, "b");
	CHECK(run_until(build_has_cmd, &w, TEST_GUARD_MS));
	w.e->interrupt_timeout_ms = 60000;
	CHECK_INT(engine_stop_build(w.e, build_id(w.e->builds), "stop"), 0);
	CHECK(wait_int(&a.interrupts, 2));
	fw_drop(&a);
	CHECK(wait_request(&w, brid));
	CHECK_INT(request_results(&w, brid), RESULTS_CANCELLED);
	CHECK_INT(builds_of(&w, brid), 1);
	world_close(&w);
}

/* ---- two connections with one worker's name ---------------------------------------------- */

static bool fw_closed(void *arg)
{
	struct fworker *fw = arg;
	return fw->closed;
}

TEST(duplicate_worker)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	struct fworker a = {0}, b = {0}, c = {0}, d = {0};
	fw_connect(&w, &a);
	CHECK(run_until(fw_attached, &a, TEST_GUARD_MS));
	int prints = a.prints;
	/* the first answers the probe: the newcomer is refused, told why */
	fw_connect(&w, &b);
	CHECK(run_until(fw_closed, &b, TEST_GUARD_MS));
	CHECK_INT(a.prints, prints + 1);
	CHECK_INT(b.prints, 1); /* the refusal */
	CHECK(fw_attached(&a));
	CHECK(w.e->conn[0] == a.ud);
	/* an error answer is still an answer */
	a.print_error = true;
	fw_connect(&w, &d);
	CHECK(run_until(fw_closed, &d, TEST_GUARD_MS));
	CHECK(fw_attached(&a));
	/* the first stops answering: after the probe timeout it is dropped */
	a.mute = true;
	w.e->dup_probe_ms = 50;
	fw_connect(&w, &c);
	CHECK(run_until(fw_closed, &a, TEST_GUARD_MS));
	CHECK(run_until(fw_attached, &c, TEST_GUARD_MS));
	CHECK(w.e->conn[0] == c.ud);
	/* and builds run on the newcomer */
	int64_t brid = request(&w, "b");
	CHECK(wait_request(&w, brid));
	CHECK_INT(request_results(&w, brid), RESULTS_SUCCESS);
	world_close(&w);
}

/* ---- commands finished from inside their update handler (UAF) ------------------------- */

static int uaf_updates, uaf_completes, uaf_dead_seen;
static struct rcmd *uaf_cmd;

static void uaf_update(void *ud, const char *key, const msgpack_object *value)
{
	struct wconn *wc = ud;
	(void)key;
	(void)value;
	uaf_updates++;
	/* the owner gives the command up inside update; it stays readable
	 * (marked dead) until a later turn */
	wconn_forget_command(wc, uaf_cmd);
	uaf_dead_seen += uaf_cmd->dead;
}

static void uaf_complete(void *ud, int status, const char *failure)
{
	(void)ud;
	(void)status;
	(void)failure;
	uaf_completes++;
}

static const struct rcmd_ops uaf_ops = {.update = uaf_update, .complete = uaf_complete};

static bool dead_reaped(void *arg)
{
	struct world *w = arg;
	return w->e->dead_cmds == NULL;
}

TEST(update_handler_finishes_its_command)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	struct fworker a = {.plan = {PLAN_HANG}, .nplan = 1};
	fw_connect(&w, &a);
	CHECK(run_until(fw_attached, &a, TEST_GUARD_MS));
	struct wconn *wc = a.ud;
	struct proto_enc args;
	proto_enc_init(&args);
	CHECK_INT(wconn_start_command(wc, "shell", "b", &args, 0, &uaf_ops, wc, &uaf_cmd), 0);
	proto_enc_release(&args);
	char cid[24];
	snprintf(cid, sizeof(cid), "%s", uaf_cmd->id);
	/* one update with three pairs: the first one's handler drops the command */
	struct proto_enc enc;
	fw_cmd_begin(&a, &enc, "update", cid);
	proto_pack_array(&enc, 3);
	for (int i = 0; i < 3; i++) {
		proto_pack_array(&enc, 2);
		proto_pack_str(&enc, "stdout");
		proto_pack_str(&enc, "x\n");
	}
	fq_push(&a, &enc);
	proto_enc_release(&enc);
	CHECK(run_until(fq_empty, NULL, TEST_GUARD_MS));
	CHECK_INT(uaf_updates, 1);
	CHECK_INT(uaf_completes, 0);
	CHECK_INT(uaf_dead_seen, 1);
	/* and later messages for it find nothing */
	int errors = a.errors;
	fw_update(&a, cid, "stdout", "late\n", 0);
	CHECK(wait_int(&a.errors, errors + 1));
	CHECK_INT(uaf_updates, 1);
	CHECK(run_until(dead_reaped, &w, TEST_GUARD_MS)); /* freed on a later turn */
	world_close(&w);
}

/* ---- database writes failing on a build's path ---------------------------------------- */

TEST(db_log_add_fails)
{
	struct world w;
	if (world_open(&w, CFG_HEAD
		       "builder { name = 'b', workers = { 'w1' }, steps = {"
		       " shell { name = 'a', command = 'true' },"
		       " shell { name = 'c', command = 'true', always_run = true } } }\n") < 0)
		return;
	if (raw_exec(&w, "CREATE TRIGGER refuse_logs BEFORE INSERT ON logs "
			 "BEGIN SELECT RAISE(ABORT, 'test refuses logs'); END") < 0)
		return;
	struct fworker a = {0};
	fw_connect(&w, &a);
	int64_t brid = request(&w, "b");
	CHECK(wait_request(&w, brid));
	char state[512], steps[128];
	CHECK_INT(build_row(&w, brid, state, sizeof(state)), RESULTS_EXCEPTION);
	CHECK(strstr(state, "database write failed: cannot add log") != NULL);
	CHECK(strstr(state, "test refuses logs") != NULL);
	build_steps(&w, brid, steps, sizeof(steps));
	CHECK_STR(steps, "a=4");
	CHECK_INT(request_results(&w, brid), RESULTS_EXCEPTION);
	CHECK_INT(a.ncmds, 1); /* mkdir only: no command ran without its log */
	world_close(&w);
}

/* The log stops taking output while the command runs: the command is
 * interrupted and given up, the build ends EXCEPTION with the reason. */
TEST(db_log_append_fails_mid_command)
{
	struct world w;
	if (world_open(&w, CFG_HEAD
		       "builder { name = 'b', workers = { 'w1' }, steps = {"
		       " shell { name = 'a', command = 'make' },"
		       " shell { name = 'c', command = 'true', always_run = true } } }\n") < 0)
		return;
	struct fworker a = {.plan = {PLAN_HANG}, .nplan = 1};
	fw_connect(&w, &a);
	int64_t brid = request(&w, "b");
	CHECK(run_until(build_has_cmd, &w, TEST_GUARD_MS));
	struct build *b = w.e->builds;
	char cid[24];
	snprintf(cid, sizeof(cid), "%s", b->step->cmd->id);
	CHECK_INT(db_log_finish(w.m.db, b->step->logid), 0); /* later appends fail */
	fw_update(&a, cid, "stdout", "lost output\n", 0);
	fw_update(&a, cid, "stdout", "more lost output\n", 0);
	CHECK(wait_request(&w, brid));
	CHECK_INT(a.interrupts, 1);
	char state[512], steps[128];
	CHECK_INT(build_row(&w, brid, state, sizeof(state)), RESULTS_EXCEPTION);
	CHECK(strstr(state, "database write failed: cannot append to log") != NULL);
	build_steps(&w, brid, steps, sizeof(steps));
	CHECK_STR(steps, "a=4");
	world_close(&w);
}

/* ---- the retry list is bounded ---------------------------------------------------------- */

TEST(retry_list_bounded)
{
	struct world w;
	if (world_open(&w, CFG_HEAD "builder { name = 'b', workers = { 'w1' }, steps = {"
				    " shell { command = 'true' } } }\n") < 0)
		return;
	/* as if KILN_MAX_RETRY_ENTRIES requests had each lost a worker once */
	for (size_t i = 0; i < KILN_MAX_RETRY_ENTRIES; i++) {
		ARRAY_GROW(w.e->retries, w.e->nretries + 1, w.e->retries_alloc);
		w.e->retries[w.e->nretries++] = (struct retry_count){(int64_t)i + 1000000, 1};
	}
	int64_t brid = request(&w, "b");
	struct fworker a = {.plan = {PLAN_HANG}, .nplan = 1};
	fw_connect(&w, &a);
	CHECK(run_until(build_has_cmd, &w, TEST_GUARD_MS));
	fw_drop(&a);
	CHECK(wait_gone(&w, &a));
	CHECK_INT(w.e->nretries, KILN_MAX_RETRY_ENTRIES);
	CHECK_INT(w.e->retries[w.e->nretries - 1].brid, brid);
	CHECK_INT(w.e->retries[0].brid, 1000001); /* the oldest went */
	world_close(&w);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("KILN_SECRET_W1", "pw", 1);
	uv_loop_init(&loop);
	uv_timer_init(&loop, &fq_timer);
	RUN(combine_matrix);
	RUN(build_flows);
	RUN(build_flow_matrix);
	RUN(state_names_failed_steps_only);
	RUN(lost_during_attach);
	RUN(lost_between_steps_and_mid_command);
	RUN(lost_while_claiming_and_opening);
	RUN(lost_while_collapsing);
	RUN(cancel_requests);
	RUN(retry_limit);
	RUN(interrupt_timeout_and_lost_during_interrupt);
	RUN(duplicate_worker);
	RUN(update_handler_finishes_its_command);
	RUN(db_log_add_fails);
	RUN(db_log_append_fails_mid_command);
	RUN(retry_list_bounded);
	uv_close((uv_handle_t *)&fq_timer, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", tmpdir);
	return tap_done();
}
