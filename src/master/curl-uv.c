/*
 * libcurl's multi_socket interface on the libuv loop (curl-uv.h).
 */
#define LOG_SUBSYS "curl"
#include "master/curl-uv.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct curl_uv_api curl_uv_api;

static void curl_uv_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption option, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
	CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	CURLMcode (*multi_cleanup)(CURLM *m);
	bool loaded;
} cfn;

struct curl_uv_job {
	struct curl_uv_job *next;
	char *body; /* owned */
	size_t len, off;
	void *priv; /* owned: ops->free */
	unsigned attempts;
};

struct curl_uv_queue {
	struct curl_uv_queue *next;
	struct curl_uv *cu;
	char *name; /* owned */
	struct curl_uv_queue_limits lim;
	const struct curl_uv_queue_ops *ops;
	void *ud;
	struct curl_uv_job *head, *tail; /* waiting, oldest first */
	struct curl_uv_job *running;     /* the one transfer, or NULL */
	CURL *easy;                      /* of running */
	struct curl_slist *list;         /* setup()'s, freed with easy */
	uv_timer_t retry;                /* backoff before the next attempt */
	bool waiting;                    /* retry armed */
	struct curl_uv_stats st;
};

struct curl_uv {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct curl_uv_queue *queues;
	struct curl_uv_sock *socks; /* watched now (closed by curl_uv_free if left) */
};

/* One socket curl watches. */
struct curl_uv_sock {
	uv_poll_t poll;
	struct curl_uv *cu;
	curl_socket_t fd;
	struct curl_uv_sock *next, **prevp; /* in cu->socks */
};

static void curl_uv_sock_close(struct curl_uv_sock *s)
{
	*s->prevp = s->next;
	if (s->next)
		s->next->prevp = s->prevp;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, curl_uv_sock_closed);
}

#define CURL_UV_LOAD(field, sym)                                                                   \
	do {                                                                                       \
		*(void **)&(field) = dlsym(lib, sym);                                              \
		if (!(field))                                                                      \
			return -ENOENT;                                                            \
	} while (0)

static int curl_uv_load(const char **ret_err)
{
	if (cfn.loaded)
		return 0;
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		*ret_err = "cannot load libcurl.so.4 (install libcurl4)";
		return -ENOENT;
	}
	*ret_err = "libcurl.so.4 lacks the multi_socket functions";
	CURL_UV_LOAD(cfn.global_init, "curl_global_init");
	CURL_UV_LOAD(cfn.easy_init, "curl_easy_init");
	CURL_UV_LOAD(cfn.easy_cleanup, "curl_easy_cleanup");
	CURL_UV_LOAD(cfn.easy_getinfo, "curl_easy_getinfo");
	CURL_UV_LOAD(cfn.multi_init, "curl_multi_init");
	CURL_UV_LOAD(cfn.multi_setopt, "curl_multi_setopt");
	CURL_UV_LOAD(cfn.multi_add_handle, "curl_multi_add_handle");
	CURL_UV_LOAD(cfn.multi_remove_handle, "curl_multi_remove_handle");
	CURL_UV_LOAD(cfn.multi_socket_action, "curl_multi_socket_action");
	CURL_UV_LOAD(cfn.multi_assign, "curl_multi_assign");
	CURL_UV_LOAD(cfn.multi_info_read, "curl_multi_info_read");
	CURL_UV_LOAD(cfn.multi_cleanup, "curl_multi_cleanup");
	CURL_UV_LOAD(curl_uv_api.easy_setopt, "curl_easy_setopt");
	CURL_UV_LOAD(curl_uv_api.slist_append, "curl_slist_append");
	CURL_UV_LOAD(curl_uv_api.slist_free_all, "curl_slist_free_all");
	CURL_UV_LOAD(curl_uv_api.easy_strerror, "curl_easy_strerror");
	if (cfn.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*ret_err = "curl_global_init failed";
		return -ENOENT;
	}
	cfn.loaded = true;
	*ret_err = NULL;
	return 0;
}

int curl_uv_transient(CURLcode rc, long response_code, int smtp)
{
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		/* a refused command: the reply code decides */
		break;
	}
	if (smtp)
		return response_code >= 400 && response_code < 500;
	return response_code == 408 || response_code == 429 ||
	       (response_code >= 500 && response_code < 600);
}

/* ---- the loop side --------------------------------------------------------- */

static void curl_uv_check_done(struct curl_uv *cu);
static void curl_uv_queue_kick(struct curl_uv_queue *q);

static void curl_uv_on_poll(uv_poll_t *p, int status, int events)
{
	struct curl_uv_sock *s = p->data;
	struct curl_uv *cu = s->cu;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	int running;
	cfn.multi_socket_action(cu->multi, s->fd, flags, &running);
	curl_uv_check_done(cu);
}

static int curl_uv_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curl_uv *cu = userp;
	struct curl_uv_sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_uv_sock_close(s);
			cfn.multi_assign(cu->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->cu = cu;
		s->fd = fd;
		if (uv_poll_init_socket(cu->loop, &s->poll, fd) < 0) {
			free(s);
			return -1; /* curl fails the transfer */
		}
		s->poll.data = s;
		s->next = cu->socks;
		if (s->next)
			s->next->prevp = &s->next;
		s->prevp = &cu->socks;
		cu->socks = s;
		cfn.multi_assign(cu->multi, fd, s);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&s->poll, ev, curl_uv_on_poll);
	return 0;
}

static void curl_uv_on_timer(uv_timer_t *t)
{
	struct curl_uv *cu = t->data;
	int running;
	cfn.multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_uv_check_done(cu);
}

static int curl_uv_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_uv *cu = userp;
	if (timeout_ms < 0)
		uv_timer_stop(&cu->timer);
	else /* 0: on the next loop turn, never from inside curl's call */
		uv_timer_start(&cu->timer, curl_uv_on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

int curl_uv_new(uv_loop_t *loop, struct curl_uv **ret, const char **ret_err)
{
	int r = curl_uv_load(ret_err);
	if (r < 0)
		return r;
	struct curl_uv *cu = xcalloc(1, sizeof(*cu));
	cu->loop = loop;
	cu->multi = cfn.multi_init();
	if (!cu->multi) {
		free(cu);
		*ret_err = "curl_multi_init failed";
		return -ENOMEM;
	}
	uv_timer_init(loop, &cu->timer);
	cu->timer.data = cu;
	cfn.multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, curl_uv_socket_cb);
	cfn.multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
	cfn.multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, curl_uv_timer_cb);
	cfn.multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
	*ret = cu;
	return 0;
}

/* ---- queues ---------------------------------------------------------------- */

static void curl_uv_job_end(struct curl_uv_queue *q, struct curl_uv_job *j,
			    enum curl_uv_outcome outcome, const char *err)
{
	q->st.queued--;
	q->st.bytes -= j->len;
	if (outcome == CURL_UV_SENT)
		q->st.sent++;
	else if (outcome == CURL_UV_FAILED)
		q->st.failed++;
	else
		q->st.dropped++;
	if (q->ops->done)
		q->ops->done(q->ud, j->priv, outcome, err);
	if (q->ops->free)
		q->ops->free(j->priv);
	free(j->body);
	free(j);
}

static size_t curl_uv_read(char *dst, size_t size, size_t nitems, void *ud)
{
	struct curl_uv_job *j = ud;
	size_t n = size * nitems;
	if (n > j->len - j->off)
		n = j->len - j->off;
	memcpy(dst, j->body + j->off, n);
	j->off += n;
	return n;
}

static void curl_uv_on_retry(uv_timer_t *t)
{
	struct curl_uv_queue *q = t->data;
	q->waiting = false;
	curl_uv_queue_kick(q);
}

/* Starts the oldest waiting message if nothing runs. */
static void curl_uv_queue_kick(struct curl_uv_queue *q)
{
	while (!q->running && !q->waiting && q->head) {
		struct curl_uv_job *j = q->head;
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		j->next = NULL;
		j->off = 0;
		j->attempts++;
		CURL *h = cfn.easy_init();
		struct curl_slist *list = NULL;
		if (!h || q->ops->setup(q->ud, j->priv, h, &list) < 0) {
			if (h)
				cfn.easy_cleanup(h);
			curl_uv_api.slist_free_all(list);
			log_warn("%s: message dropped: cannot set up the transfer", q->name);
			curl_uv_job_end(q, j, CURL_UV_FAILED, "cannot set up the transfer");
			continue;
		}
		curl_uv_api.easy_setopt(h, CURLOPT_READFUNCTION, curl_uv_read);
		curl_uv_api.easy_setopt(h, CURLOPT_READDATA, j);
		curl_uv_api.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->len);
		curl_uv_api.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)q->lim.timeout_ms);
		curl_uv_api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)q->lim.timeout_ms);
		curl_uv_api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_uv_api.easy_setopt(h, CURLOPT_PRIVATE, q);
		if (cfn.multi_add_handle(q->cu->multi, h) != CURLM_OK) {
			cfn.easy_cleanup(h);
			curl_uv_api.slist_free_all(list);
			curl_uv_job_end(q, j, CURL_UV_FAILED, "cannot start the transfer");
			continue;
		}
		q->running = j;
		q->easy = h;
		q->list = list;
	}
}

static void curl_uv_transfer_done(struct curl_uv_queue *q, CURLcode rc)
{
	struct curl_uv_job *j = q->running;
	long code = 0;
	char *scheme = NULL;
	cfn.easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
	cfn.easy_getinfo(q->easy, CURLINFO_SCHEME, &scheme);
	/* HTTP 429 or 503 with Retry-After: that long before the next attempt */
	curl_off_t retry_after = 0;
	if (code == 429 || code == 503)
		cfn.easy_getinfo(q->easy, CURLINFO_RETRY_AFTER, &retry_after);
	int smtp = scheme && (!strcasecmp(scheme, "smtp") || !strcasecmp(scheme, "smtps"));
	cfn.multi_remove_handle(q->cu->multi, q->easy);
	cfn.easy_cleanup(q->easy);
	curl_uv_api.slist_free_all(q->list);
	q->easy = NULL;
	q->list = NULL;
	q->running = NULL;

	bool ok = rc == CURLE_OK && (smtp ? code < 400 : code < 300);
	if (ok) {
		log_info("%s: message sent (attempt %u)", q->name, j->attempts);
		curl_uv_job_end(q, j, CURL_UV_SENT, NULL);
	} else {
		char why[256];
		if (rc != CURLE_OK && code)
			snprintf(why, sizeof(why), "%s (reply %ld)", curl_uv_api.easy_strerror(rc),
				 code);
		else if (rc != CURLE_OK)
			snprintf(why, sizeof(why), "%s", curl_uv_api.easy_strerror(rc));
		else
			snprintf(why, sizeof(why), "reply %ld", code);
		if (curl_uv_transient(rc, code, smtp) && j->attempts < q->lim.max_attempts) {
			unsigned shift = j->attempts - 1 > 6 ? 6 : j->attempts - 1;
			uint64_t delay = q->lim.backoff_ms << shift;
			if (retry_after > 0) /* the server's wish, at most an hour */
				delay = (uint64_t)(retry_after > 3600 ? 3600 : retry_after) * 1000;
			log_warn("%s: attempt %u failed (%s): retrying in %llu ms", q->name,
				 j->attempts, why, (unsigned long long)delay);
			q->st.retries++;
			/* back at the head: the order of messages is kept */
			j->next = q->head;
			q->head = j;
			if (!q->tail)
				q->tail = j;
			q->waiting = true;
			uv_timer_start(&q->retry, curl_uv_on_retry, delay, 0);
		} else {
			log_warn("%s: message dropped after %u attempt%s: %s", q->name, j->attempts,
				 j->attempts == 1 ? "" : "s", why);
			curl_uv_job_end(q, j, CURL_UV_FAILED, why);
		}
	}
	curl_uv_queue_kick(q);
}

static void curl_uv_check_done(struct curl_uv *cu)
{
	CURLMsg *msg;
	int left;
	while ((msg = cfn.multi_info_read(cu->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct curl_uv_queue *q = NULL;
		CURL *h = msg->easy_handle;
		CURLcode rc = msg->data.result;
		cfn.easy_getinfo(h, CURLINFO_PRIVATE, (char **)&q);
		if (q && q->easy == h)
			curl_uv_transfer_done(q, rc);
	}
}

struct curl_uv_queue *curl_uv_queue_new(struct curl_uv *cu, const char *name,
					const struct curl_uv_queue_limits *lim,
					const struct curl_uv_queue_ops *ops, void *ud)
{
	struct curl_uv_queue *q = xcalloc(1, sizeof(*q));
	q->cu = cu;
	q->name = xstrdup(name);
	q->lim = *lim;
	if (!q->lim.max_jobs)
		q->lim.max_jobs = 1;
	if (!q->lim.max_attempts)
		q->lim.max_attempts = 1;
	q->ops = ops;
	q->ud = ud;
	uv_timer_init(cu->loop, &q->retry);
	q->retry.data = q;
	q->next = cu->queues;
	cu->queues = q;
	return q;
}

int curl_uv_submit(struct curl_uv_queue *q, const char *body, size_t len, void *priv)
{
	struct curl_uv_job *j = xcalloc(1, sizeof(*j));
	j->body = xmalloc(len + 1);
	memcpy(j->body, body, len);
	j->len = len;
	j->priv = priv;
	q->st.queued++;
	q->st.bytes += len;
	if (len > q->lim.max_bytes) {
		log_warn("%s: message of %zu bytes dropped: over the queue's %zu bytes", q->name,
			 len, q->lim.max_bytes);
		curl_uv_job_end(q, j, CURL_UV_FAILED, "message over the queue's byte cap");
		return -E2BIG;
	}
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	/* over a cap: the oldest waiting messages go (never the running one) */
	while ((q->st.queued > q->lim.max_jobs || q->st.bytes > q->lim.max_bytes) && q->head != j) {
		struct curl_uv_job *old = q->head;
		q->head = old->next;
		log_warn("%s: queue full (%zu messages, %zu bytes; caps %zu, %zu): dropped the "
			 "oldest waiting message",
			 q->name, q->st.queued, q->st.bytes, q->lim.max_jobs, q->lim.max_bytes);
		curl_uv_job_end(q, old, CURL_UV_DROPPED, "queue full");
	}
	curl_uv_queue_kick(q);
	return 0;
}

void curl_uv_queue_stats(const struct curl_uv_queue *q, struct curl_uv_stats *ret)
{
	*ret = q->st;
}

static void curl_uv_queue_closed(uv_handle_t *h)
{
	struct curl_uv_queue *q = h->data;
	free(q->name);
	free(q);
}

static void curl_uv_closed(uv_handle_t *h)
{
	free(h->data);
}

void curl_uv_free(struct curl_uv *cu)
{
	if (!cu)
		return;
	while (cu->queues) {
		struct curl_uv_queue *q = cu->queues;
		cu->queues = q->next;
		size_t n = q->st.queued;
		if (q->easy) {
			cfn.multi_remove_handle(cu->multi, q->easy);
			cfn.easy_cleanup(q->easy);
			curl_uv_api.slist_free_all(q->list);
			q->easy = NULL;
			struct curl_uv_job *j = q->running;
			q->running = NULL;
			curl_uv_job_end(q, j, CURL_UV_DROPPED, "master stopping");
		}
		while (q->head) {
			struct curl_uv_job *j = q->head;
			q->head = j->next;
			curl_uv_job_end(q, j, CURL_UV_DROPPED, "master stopping");
		}
		if (n)
			log_warn("%s: %zu message%s not sent: the master is stopping", q->name, n,
				 n == 1 ? "" : "s");
		uv_timer_stop(&q->retry);
		uv_close((uv_handle_t *)&q->retry, curl_uv_queue_closed);
	}
	cfn.multi_cleanup(cu->multi);
	while (cu->socks) /* curl closed them: no callback may reach the freed multi */
		curl_uv_sock_close(cu->socks);
	uv_timer_stop(&cu->timer);
	uv_close((uv_handle_t *)&cu->timer, curl_uv_closed);
}
