/*
 * The metrics push (master/tsdb.c): InfluxDB and Graphite lines, escaping
 * and name sanitising; then the client on a real libuv loop against a
 * listener of this test on 127.0.0.1 port 0: exact lines arrive, a dead
 * store blocks nothing, the client reconnects when the store comes back or
 * closes the connection, and a full queue drops its oldest points.
 */
#include "master/tsdb.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */

static char *fmt(enum config_tsdb_protocol p, const char *prefix, const char *b, const char *n,
		 double v, double t, int *ret_r)
{
	struct buf out;
	buf_init(&out, KILN_TSDB_MAX_LINE);
	*ret_r = tsdb_format(p, prefix, b, n, v, t, &out);
	return buf_detach(&out, NULL);
}

#define CHECK_FMT(p, prefix, b, n, v, t, want)                                                     \
	do {                                                                                       \
		int r_;                                                                            \
		char *got_ = fmt(p, prefix, b, n, v, t, &r_);                                      \
		CHECK_INT(r_, 0);                                                                  \
		CHECK_STR(got_, want);                                                             \
		free(got_);                                                                        \
	} while (0)

TEST(influx_lines)
{
	CHECK_FMT(CONFIG_TSDB_INFLUX, "kiln", "hello", "warnings", 12, 1700000000,
		  "kiln_number,builder=hello,name=warnings value=12 1700000000000000000\n");
	CHECK_FMT(CONFIG_TSDB_INFLUX, "kiln", "my builder,x=1", "a\\b", 0.25, 1700000000.5,
		  "kiln_number,builder=my\\ builder\\,x\\=1,name=a\\\\b value=0.25 "
		  "1700000000500000000\n");
	CHECK_FMT(CONFIG_TSDB_INFLUX, "ci", "b\nx\t", "n", -3.5e-7, 1.000001,
		  "ci_number,builder=b_x_,name=n value=-3.5e-07 1000001000\n");
	CHECK_FMT(CONFIG_TSDB_INFLUX, "kiln", "b", "n", 0.1, 0,
		  "kiln_number,builder=b,name=n value=0.1 0\n");
	CHECK_FMT(CONFIG_TSDB_INFLUX, "kiln", "b", "size", 1073741824, 5,
		  "kiln_number,builder=b,name=size value=1073741824 5000000000\n");
}

TEST(graphite_lines)
{
	CHECK_FMT(CONFIG_TSDB_GRAPHITE, "kiln", "hello", "warnings", 12, 1700000000.9,
		  "kiln.hello.warnings 12 1700000000\n");
	CHECK_FMT(CONFIG_TSDB_GRAPHITE, "ci.prod", "my builder.v2", "test/failed", 1.5, 7,
		  "ci.prod.my_builder_v2.test_failed 1.5 7\n");
	CHECK_FMT(CONFIG_TSDB_GRAPHITE, "", "b", "n", 1, 7, "b.n 1 7\n");
}

TEST(format_errors)
{
	int r;
	free(fmt(CONFIG_TSDB_INFLUX, "kiln", "", "n", 1, 1, &r));
	CHECK_INT(r, -EINVAL);
	free(fmt(CONFIG_TSDB_INFLUX, "kiln", "b", "", 1, 1, &r));
	CHECK_INT(r, -EINVAL);
	free(fmt(CONFIG_TSDB_GRAPHITE, "kiln", "b", "n", NAN, 1, &r));
	CHECK_INT(r, -EINVAL);
	free(fmt(CONFIG_TSDB_GRAPHITE, "kiln", "b", "n", INFINITY, 1, &r));
	CHECK_INT(r, -EINVAL);
	free(fmt(CONFIG_TSDB_INFLUX, "kiln", "b", "n", 1, -1, &r));
	CHECK_INT(r, -EINVAL);
	char big[KILN_TSDB_MAX_LINE];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	free(fmt(CONFIG_TSDB_INFLUX, "kiln", big, "n", 1, 1, &r));
	CHECK_INT(r, -E2BIG);
}

/* ---- metrics_push in master.lua (config-tsdb.c) ------------------------------ */

static struct config *load(const char *text, char **ret_err)
{
	struct config *cfg = NULL;
	*ret_err = NULL;
	if (config_load_string("master.lua", text, strlen(text), NULL, &cfg, ret_err) < 0)
		return NULL;
	return cfg;
}

TEST(config_metrics_push)
{
	char *err;
	struct config *cfg = load("title = 'x'\n", &err);
	CHECK(cfg && cfg->metrics_push == NULL);
	config_free(cfg);
	cfg = load("\nmetrics_push = { protocol = 'graphite', host = 'graphite.example.org', "
		   "port = 2003, prefix = 'ci.kiln' }\n",
		   &err);
	CHECK(cfg && cfg->metrics_push);
	if (cfg && cfg->metrics_push) {
		CHECK_INT(cfg->metrics_push->protocol, CONFIG_TSDB_GRAPHITE);
		CHECK_STR(cfg->metrics_push->host, "graphite.example.org");
		CHECK_INT(cfg->metrics_push->port, 2003);
		CHECK_STR(cfg->metrics_push->prefix, "ci.kiln");
		CHECK_INT(cfg->metrics_push->line, 2);
	}
	config_free(cfg);
	cfg = load("metrics_push = { protocol = 'influx', host = '::1', port = 8094 }", &err);
	CHECK(cfg && cfg->metrics_push && !strcmp(cfg->metrics_push->prefix, "kiln"));
	config_free(cfg);
	/* set twice: the last one holds, nothing leaks (ASan) */
	cfg = load("metrics_push = { protocol = 'influx', host = 'a', port = 1 }\n"
		   "metrics_push = { protocol = 'graphite', host = 'b', port = 2 }\n",
		   &err);
	CHECK(cfg && cfg->metrics_push && !strcmp(cfg->metrics_push->host, "b"));
	config_free(cfg);

	static const struct {
		const char *text, *want;
	} bad[] = {
		{"metrics_push = 'influx'", "master.lua:1: 'metrics_push' must be a table"},
		{"\nmetrics_push = { host = 'a', port = 1 }",
		 "master.lua:2: metrics_push: 'protocol' is required"},
		{"metrics_push = { protocol = 'statsd', host = 'a', port = 1 }",
		 "master.lua:1: metrics_push: 'protocol' must be \"influx\" or \"graphite\" (got "
		 "'statsd')"},
		{"metrics_push = { protocol = 'influx', port = 1 }",
		 "master.lua:1: metrics_push: 'host' is required"},
		{"metrics_push = { protocol = 'influx', host = 'a b', port = 1 }",
		 "master.lua:1: metrics_push: 'host' must be a host name"},
		{"metrics_push = { protocol = 'influx', host = 'a' }",
		 "master.lua:1: metrics_push: 'port' is required (1-65535)"},
		{"metrics_push = { protocol = 'influx', host = 'a', port = 70000 }",
		 "master.lua:1: metrics_push: 'port' must be between 1 and 65535 (got 70000)"},
		{"metrics_push = { protocol = 'influx', host = 'a', port = '80' }",
		 "master.lua:1: metrics_push: 'port' must be an integer"},
		{"metrics_push = { protocol = 'graphite', host = 'a', port = 1, prefix = 'a b' }",
		 "master.lua:1: metrics_push: 'prefix' must be"},
		{"metrics_push = { protocol = 'graphite', host = 'a', port = 1, prefix = 'x.' }",
		 "master.lua:1: metrics_push: 'prefix' must be"},
		{"metrics_push = { protocol = 'graphite', host = 'a', port = 1, tls = true }",
		 "master.lua:1: metrics_push: unknown key 'tls'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = load(bad[i].text, &err);
		CHECK(cfg == NULL);
		if (!err || strncmp(err, bad[i].want, strlen(bad[i].want)))
			TAP_FAIL("case %zu: got '%s', want '%s...'", i, err ? err : "(null)",
				 bad[i].want);
		free(err);
		config_free(cfg);
	}
}

/* ---- a store on the test's own loop -------------------------------------- */

#define STORE_MAX (1u << 20)

struct store {
	uv_loop_t *loop;
	uv_tcp_t srv;
	bool srv_open;
	uv_tcp_t cli[16];
	int ncli;
	char *got; /* owned, STORE_MAX bytes */
	size_t len;
	bool close_after_line; /* hang up on a client once it sent a line */
};

static void store_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	static char rb[4096];
	*b = uv_buf_init(rb, sizeof(rb));
}

static void store_read(uv_stream_t *c, ssize_t n, const uv_buf_t *b)
{
	struct store *st = c->data;
	if (n < 0) {
		if (!uv_is_closing((uv_handle_t *)c))
			uv_close((uv_handle_t *)c, NULL);
		return;
	}
	if ((size_t)n > STORE_MAX - 1 - st->len)
		n = (ssize_t)(STORE_MAX - 1 - st->len);
	memcpy(st->got + st->len, b->base, (size_t)n);
	st->len += (size_t)n;
	st->got[st->len] = '\0';
	if (st->close_after_line && memchr(b->base, '\n', (size_t)n) &&
	    !uv_is_closing((uv_handle_t *)c))
		uv_close((uv_handle_t *)c, NULL);
}

static void store_conn(uv_stream_t *srv, int status)
{
	struct store *st = srv->data;
	if (status < 0 || st->ncli == 16)
		return;
	uv_tcp_t *c = &st->cli[st->ncli++];
	uv_tcp_init(st->loop, c);
	c->data = st;
	if (uv_accept(srv, (uv_stream_t *)c) == 0)
		uv_read_start((uv_stream_t *)c, store_alloc, store_read);
}

/* Listens on 127.0.0.1:port (0 = any); returns the port, or -1. */
static int store_listen(struct store *st, uv_loop_t *loop, int port)
{
	st->loop = loop;
	if (!st->got)
		st->got = calloc(1, STORE_MAX);
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", port, &a);
	uv_tcp_init(loop, &st->srv);
	st->srv.data = st;
	st->srv_open = true;
	if (uv_tcp_bind(&st->srv, (const struct sockaddr *)&a, 0) < 0 ||
	    uv_listen((uv_stream_t *)&st->srv, 16, store_conn) < 0)
		return -1;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uv_tcp_getsockname(&st->srv, (struct sockaddr *)&ss, &len);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void store_close(struct store *st)
{
	for (int i = 0; i < st->ncli; i++)
		if (!uv_is_closing((uv_handle_t *)&st->cli[i]))
			uv_close((uv_handle_t *)&st->cli[i], NULL);
	if (st->srv_open)
		uv_close((uv_handle_t *)&st->srv, NULL);
	st->srv_open = false;
}

static unsigned long ticks;
static void on_tick(uv_timer_t *h)
{
	ticks++;
}

/* Runs the loop until cond(arg) or ms milliseconds have passed; a 10 ms
 * tick wakes it to look.  Returns cond's last value. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, uint64_t ms)
{
	uv_timer_t tick;
	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, on_tick, 10, 10);
	uint64_t end = uv_now(loop) + ms;
	bool ok;
	while (!(ok = cond(arg)) && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}

static bool never(void *arg)
{
	return false;
}

struct want {
	struct store *st;
	const char *text;
};

static bool store_has(void *arg)
{
	struct want *w = arg;
	return strstr(w->st->got, w->text) != NULL;
}

static bool disconnected(void *arg)
{
	return !tsdb_connected(arg);
}

/* Closes everything and checks the loop ends with no handle left. */
static void loop_finish(uv_loop_t *loop, struct tsdb *t, struct store *st)
{
	tsdb_stop(t);
	store_close(st);
	uv_run(loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(loop), 0);
	free(st->got);
}

TEST(exact_lines_arrive)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct store st = {0};
	int port = store_listen(&st, &loop, 0);
	CHECK(port > 0);
	struct config_metrics_push cfg = {CONFIG_TSDB_INFLUX, "127.0.0.1", port, "kiln", 1};
	struct tsdb *t = NULL;
	CHECK_INT(tsdb_start(&loop, &cfg, &t), 0);
	CHECK_INT(tsdb_record(t, "hello", "warnings", 12, 1700000000), 0);
	CHECK_INT(tsdb_record(t, "hello", "duration", 1.5, 1700000001), 0);
	CHECK_INT(tsdb_record(t, "", "x", 1, 1), -EINVAL);
	struct want w = {&st, "duration"};
	CHECK(run_until(&loop, store_has, &w, 10000));
	CHECK_STR(st.got,
		  "kiln_number,builder=hello,name=warnings value=12 1700000000000000000\n"
		  "kiln_number,builder=hello,name=duration value=1.5 1700000001000000000\n");
	CHECK_INT(tsdb_sent(t), 2);
	CHECK_INT(tsdb_queued(t), 0);
	loop_finish(&loop, t, &st);
}

/* A host name is resolved on the thread pool (and where "localhost" gives
 * ::1 first, where the store is not, the next attempt takes 127.0.0.1). */
TEST(graphite_by_name)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct store st = {0};
	int port = store_listen(&st, &loop, 0);
	struct config_metrics_push cfg = {CONFIG_TSDB_GRAPHITE, "localhost", port, "ci", 1};
	struct tsdb *t = NULL;
	CHECK_INT(tsdb_start(&loop, &cfg, &t), 0);
	CHECK_INT(tsdb_record(t, "b 1", "test.failed", 3, 1700000000), 0);
	struct want w = {&st, "\n"};
	CHECK(run_until(&loop, store_has, &w, 10000));
	CHECK_STR(st.got, "ci.b_1.test_failed 3 1700000000\n");
	loop_finish(&loop, t, &st);
}

/* A free port: bound, then closed. */
static int free_port(uv_loop_t *loop)
{
	struct store tmp = {0};
	int port = store_listen(&tmp, loop, 0);
	store_close(&tmp);
	uv_run(loop, UV_RUN_NOWAIT);
	free(tmp.got);
	return port;
}

TEST(dead_store_then_back)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	int port = free_port(&loop);
	struct config_metrics_push cfg = {CONFIG_TSDB_GRAPHITE, "127.0.0.1", port, "kiln", 1};
	struct tsdb *t = NULL;
	CHECK_INT(tsdb_start(&loop, &cfg, &t), 0);
	uint64_t t0 = uv_hrtime();
	for (int i = 0; i < 3; i++)
		CHECK_INT(tsdb_record(t, "b", "n", i, 100 + i), 0);
	/* queued, nothing waited for (a connect would wait seconds; 500 ms is
	 * generous for a loaded machine) */
	CHECK((uv_hrtime() - t0) / 1000000 < 500);
	/* the loop keeps turning while the client fails and backs off: about
	 * 100 ticks of 10 ms in a second (10 allows for a loaded machine) */
	ticks = 0;
	uint64_t start = uv_now(&loop);
	run_until(&loop, never, NULL, 1000);
	CHECK(ticks >= 10);
	CHECK(uv_now(&loop) - start < 30000); /* the 1 s run ended: a guard */
	CHECK(!tsdb_connected(t));
	CHECK_INT(tsdb_queued(t), 3);
	CHECK_INT(tsdb_sent(t), 0);

	struct store st = {0};
	CHECK_INT(store_listen(&st, &loop, port), port);
	struct want w = {&st, "kiln.b.n 2 102\n"};
	CHECK(run_until(&loop, store_has, &w, TEST_GUARD_MS)); /* backoff: 0.5, 1, 2, 4 s */
	CHECK_STR(st.got, "kiln.b.n 0 100\nkiln.b.n 1 101\nkiln.b.n 2 102\n");
	CHECK_INT(tsdb_sent(t), 3);
	loop_finish(&loop, t, &st);
}

TEST(store_hangs_up)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct store st = {.close_after_line = true};
	int port = store_listen(&st, &loop, 0);
	struct config_metrics_push cfg = {CONFIG_TSDB_INFLUX, "127.0.0.1", port, "kiln", 1};
	struct tsdb *t = NULL;
	CHECK_INT(tsdb_start(&loop, &cfg, &t), 0);
	CHECK_INT(tsdb_record(t, "b", "first", 1, 1), 0);
	struct want w = {&st, "first"};
	CHECK(run_until(&loop, store_has, &w, 10000));
	CHECK(run_until(&loop, disconnected, t, 10000)); /* it saw the hang-up */
	CHECK_INT(tsdb_record(t, "b", "second", 2, 2), 0);
	w.text = "second";
	CHECK(run_until(&loop, store_has, &w, 10000));
	CHECK_INT(st.ncli, 2);
	CHECK_STR(st.got, "kiln_number,builder=b,name=first value=1 1000000000\n"
			  "kiln_number,builder=b,name=second value=2 2000000000\n");
	loop_finish(&loop, t, &st);
}

TEST(full_queue_drops_oldest)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	int port = free_port(&loop);
	struct config_metrics_push cfg = {CONFIG_TSDB_GRAPHITE, "127.0.0.1", port, "kiln", 1};
	struct tsdb *t = NULL;
	CHECK_INT(tsdb_start(&loop, &cfg, &t), 0);
	/* the daemon log (stderr) gets one line for the 5 drops, not 5 */
	fflush(stderr);
	int saved = dup(2);
	FILE *logf = tmpfile();
	dup2(fileno(logf), 2);
	for (int i = 0; i < KILN_TSDB_MAX_QUEUE + 5; i++)
		CHECK_INT(tsdb_record(t, "b", "n", i, i), 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(logf);
	char line[512];
	int full_lines = 0;
	while (fgets(line, sizeof(line), logf))
		full_lines += strstr(line, "queue full (10000 points): dropped 1 oldest") != NULL;
	fclose(logf);
	CHECK_INT(full_lines, 1);
	CHECK_INT(tsdb_dropped(t), 5);
	CHECK_INT(tsdb_queued(t), KILN_TSDB_MAX_QUEUE);

	/* the store comes up: what is left arrives, oldest first, from point 5 */
	struct store st = {0};
	CHECK_INT(store_listen(&st, &loop, port), port);
	char last[64];
	snprintf(last, sizeof(last), "kiln.b.n %d %d\n", KILN_TSDB_MAX_QUEUE + 4,
		 KILN_TSDB_MAX_QUEUE + 4);
	struct want w = {&st, last};
	CHECK(run_until(&loop, store_has, &w, 15000));
	CHECK(!strncmp(st.got, "kiln.b.n 5 5\nkiln.b.n 6 6\n", 26));
	CHECK_INT(tsdb_sent(t), KILN_TSDB_MAX_QUEUE);
	loop_finish(&loop, t, &st);
}

/* Stopping mid-connect with points queued frees everything (ASan). */
TEST(stop_while_connecting)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct config_metrics_push cfg = {CONFIG_TSDB_INFLUX, "localhost", 9, "kiln", 1};
	struct tsdb *t = NULL;
	CHECK_INT(tsdb_start(&loop, &cfg, &t), 0);
	CHECK_INT(tsdb_record(t, "b", "n", 1, 1), 0);
	tsdb_stop(t);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	CHECK_INT(tsdb_record(NULL, "b", "n", 1, 1), 0); /* no metrics_push: a no-op */
}

int main(void)
{
	RUN(influx_lines);
	RUN(graphite_lines);
	RUN(format_errors);
	RUN(config_metrics_push);
	RUN(exact_lines_arrive);
	RUN(graphite_by_name);
	RUN(dead_store_then_back);
	RUN(store_hangs_up);
	RUN(full_queue_drops_oldest);
	RUN(stop_while_connecting);
	return tap_done();
}
