/*
 * libcurl's multi interface on the libuv loop (src/master/curl-uv.c), on a
 * real loop against real local sockets: a peer that accepts and never
 * answers (the attempt times out, is retried with backoff, then dropped
 * with its reason), a closed port (refused: retried, dropped), the queue's
 * caps (the oldest waiting messages go), and the loop stays responsive the
 * whole time (a 5 ms ticker's worst gap).
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "common/clock.h"
#include "master/curl-uv.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t loop;

/* ---- a peer that accepts and never says a word ---- */
static uv_tcp_t silent;
static int silent_port;
static size_t silent_accepted;

static void silent_on_conn(uv_stream_t *srv, int status)
{
	if (status < 0)
		return;
	uv_tcp_t *c = malloc(sizeof(*c));
	uv_tcp_init(&loop, c);
	if (uv_accept(srv, (uv_stream_t *)c) == 0)
		silent_accepted++; /* kept open, never read or written */
}

static int listen_any(uv_tcp_t *t, uv_connection_cb cb)
{
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(&loop, t);
	if (uv_tcp_bind(t, (const struct sockaddr *)&a, 0) < 0)
		return -1;
	if (cb && uv_listen((uv_stream_t *)t, 16, cb) < 0)
		return -1;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- the queue's side ---- */
struct outcome {
	size_t sent, failed, dropped;
	char last_err[256];
	int priv_freed;
};
static struct outcome out;
static char url[128];

static int t_setup(void *ud, void *priv, CURL *h, struct curl_slist **ret_list)
{
	struct curl_slist *l = curl_uv_api.slist_append(NULL, "<to@example.org>");
	*ret_list = l;
	curl_uv_api.easy_setopt(h, CURLOPT_URL, url);
	curl_uv_api.easy_setopt(h, CURLOPT_MAIL_FROM, "<from@example.org>");
	curl_uv_api.easy_setopt(h, CURLOPT_MAIL_RCPT, l);
	curl_uv_api.easy_setopt(h, CURLOPT_UPLOAD, 1L);
	return 0;
}

static void t_done(void *ud, void *priv, enum curl_uv_outcome o, const char *err)
{
	if (o == CURL_UV_SENT)
		out.sent++;
	else if (o == CURL_UV_FAILED)
		out.failed++;
	else
		out.dropped++;
	snprintf(out.last_err, sizeof(out.last_err), "%s", err ? err : "");
}

static void t_free(void *priv)
{
	out.priv_freed++;
	free(priv);
}

static const struct curl_uv_queue_ops t_ops = {.setup = t_setup, .done = t_done, .free = t_free};

/* ---- a ticker measuring the loop's worst gap ---- */
static uv_timer_t ticker, deadline;
static double last_tick, worst_gap;
static size_t want_ended;

static void on_tick(uv_timer_t *t)
{
	double now = (clock_mono_ms() / 1000.0);
	if (last_tick > 0 && now - last_tick > worst_gap)
		worst_gap = now - last_tick;
	last_tick = now;
	if (out.sent + out.failed + out.dropped >= want_ended)
		uv_stop(&loop);
}

static void on_deadline(uv_timer_t *t)
{
	uv_stop(&loop);
}

/* Runs the loop until n messages ended or TEST_GUARD_MS passed; returns seconds. */
static double run_until(size_t n)
{
	want_ended = n;
	last_tick = 0;
	worst_gap = 0;
	double t0 = (clock_mono_ms() / 1000.0);
	uv_timer_start(&ticker, on_tick, 5, 5);
	uv_timer_start(&deadline, on_deadline, TEST_GUARD_MS, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_timer_stop(&ticker);
	uv_timer_stop(&deadline);
	return (clock_mono_ms() / 1000.0) - t0;
}

static void *xmalloc_test(void)
{
	return malloc(1);
}

static const char body[] = "Subject: t\r\n\r\nhello\r\n";

TEST(silent_peer_times_out_and_is_retried)
{
	struct curl_uv *cu;
	const char *why;
	CHECK_INT(curl_uv_new(&loop, &cu, &why), 0);
	memset(&out, 0, sizeof(out));
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", silent_port);
	struct curl_uv_queue_limits lim = {.max_jobs = 10,
					   .max_bytes = 1 << 20,
					   .timeout_ms = 300,
					   .max_attempts = 3,
					   .backoff_ms = 100};
	struct curl_uv_queue *q = curl_uv_queue_new(cu, "test 'silent'", &lim, &t_ops, NULL);
	size_t before = silent_accepted;
	CHECK_INT(curl_uv_submit(q, body, sizeof(body) - 1, xmalloc_test()), 0);
	double took = run_until(1);
	CHECK_INT(out.failed, 1);
	CHECK(strstr(out.last_err, "imeout") != NULL);
	CHECK_INT(silent_accepted - before, 3); /* three attempts */
	struct curl_uv_stats st;
	curl_uv_queue_stats(q, &st);
	CHECK_INT(st.retries, 2);
	CHECK_INT(st.queued, 0);
	CHECK_INT(st.bytes, 0);
	/* 3 x 300 ms + 100 + 200 ms of backoff */
	CHECK(took >= 1.1 && took < 30); /* the upper bound: a guard */
	/* the loop never stalled while curl waited: a gap below one attempt's
	 * 300 ms (a blocking wait would be one), generous for a loaded machine */
	CHECK(worst_gap < 0.25);
	printf("# silent peer: %.2f s for 3 attempts, worst loop gap %.1f ms\n", took,
	       worst_gap * 1000);
	curl_uv_free(cu);
	CHECK_INT(out.priv_freed, 1);
}

TEST(refused_is_retried_then_dropped)
{
	struct curl_uv *cu;
	const char *why;
	CHECK_INT(curl_uv_new(&loop, &cu, &why), 0);
	memset(&out, 0, sizeof(out));
	static uv_tcp_t closed;
	int port = listen_any(&closed, NULL); /* bound, not listening: refused */
	CHECK(port > 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
	struct curl_uv_queue_limits lim = {.max_jobs = 10,
					   .max_bytes = 1 << 20,
					   .timeout_ms = 20000,
					   .max_attempts = 2,
					   .backoff_ms = 50};
	struct curl_uv_queue *q = curl_uv_queue_new(cu, "test 'refused'", &lim, &t_ops, NULL);
	CHECK_INT(curl_uv_submit(q, body, sizeof(body) - 1, xmalloc_test()), 0);
	double took = run_until(1);
	CHECK_INT(out.failed, 1);
	CHECK(strstr(out.last_err, "onnect") != NULL);
	struct curl_uv_stats st;
	curl_uv_queue_stats(q, &st);
	CHECK_INT(st.retries, 1);
	CHECK(took < 10); /* far below the 20 s timeout: refused at once */
	curl_uv_free(cu);
	uv_close((uv_handle_t *)&closed, NULL);
}

TEST(queue_caps_drop_the_oldest)
{
	struct curl_uv *cu;
	const char *why;
	CHECK_INT(curl_uv_new(&loop, &cu, &why), 0);
	memset(&out, 0, sizeof(out));
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", silent_port);
	struct curl_uv_queue_limits lim = {.max_jobs = 3,
					   .max_bytes = 100,
					   .timeout_ms = 200,
					   .max_attempts = 1,
					   .backoff_ms = 10};
	struct curl_uv_queue *q = curl_uv_queue_new(cu, "test 'caps'", &lim, &t_ops, NULL);
	/* the first starts at once; later ones wait; past 3 the oldest waiting go */
	for (int i = 0; i < 6; i++)
		CHECK_INT(curl_uv_submit(q, body, sizeof(body) - 1, xmalloc_test()), 0);
	struct curl_uv_stats st;
	curl_uv_queue_stats(q, &st);
	CHECK_INT(st.queued, 3);
	CHECK_INT(st.dropped, 3);
	CHECK_INT(out.dropped, 3);
	/* bytes: 4 bodies of 22 fit in 100, a 5th would not */
	char big[60];
	memset(big, 'x', sizeof(big));
	CHECK_INT(curl_uv_submit(q, big, sizeof(big), xmalloc_test()), 0);
	curl_uv_queue_stats(q, &st);
	CHECK(st.bytes <= 100);
	CHECK_INT(st.queued, 2);
	/* one body over the whole byte cap is refused */
	char huge[200];
	memset(huge, 'y', sizeof(huge));
	CHECK_INT(curl_uv_submit(q, huge, sizeof(huge), xmalloc_test()), -E2BIG);
	run_until(8); /* 5 dropped, 1 refused, 2 timed out */
	curl_uv_queue_stats(q, &st);
	CHECK_INT(st.queued, 0);
	CHECK_INT(out.priv_freed, 8);
	curl_uv_free(cu);
}

TEST(transient_classes)
{
	CHECK(curl_uv_transient(CURLE_COULDNT_CONNECT, 0, 1));
	CHECK(curl_uv_transient(CURLE_OPERATION_TIMEDOUT, 0, 0));
	CHECK(curl_uv_transient(CURLE_SEND_ERROR, 0, 1));
	CHECK(curl_uv_transient(CURLE_OK, 451, 1));
	CHECK(!curl_uv_transient(CURLE_OK, 550, 1));
	CHECK(!curl_uv_transient(CURLE_LOGIN_DENIED, 535, 1));
	CHECK(curl_uv_transient(CURLE_OK, 503, 0));
	CHECK(curl_uv_transient(CURLE_OK, 429, 0));
	CHECK(!curl_uv_transient(CURLE_OK, 404, 0));
}

int main(void)
{
	uv_loop_init(&loop);
	uv_timer_init(&loop, &ticker);
	uv_timer_init(&loop, &deadline);
	silent_port = listen_any(&silent, silent_on_conn);
	if (silent_port <= 0) {
		TAP_FAIL("cannot listen on loopback");
		return tap_done();
	}
	RUN(transient_classes);
	RUN(silent_peer_times_out_and_is_retried);
	RUN(refused_is_retried_then_dropped);
	RUN(queue_caps_drop_the_oldest);
	return tap_done();
}
