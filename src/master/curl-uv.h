/*
 * Outbound traffic (SMTP, HTTP) through libcurl's multi interface driven by
 * the master's libuv loop: curl_multi_socket_action() on uv_poll events and
 * one uv_timer for curl's timeouts, so a slow or dead peer never blocks the
 * loop.  libcurl is loaded with dlopen() when the first queue is made: a
 * master without reporters maps none of it (docs/PERFORMANCE.md).
 *
 * Work goes through queues, one per reporter: each holds at most max_jobs
 * messages and max_bytes of bodies (submitting past either drops the
 * oldest waiting one, with a logged warning), runs one transfer at a time
 * with a total timeout, and retries a transient failure (connection
 * refused or reset, timeout, SMTP 4xx, HTTP 429 or 5xx) after an
 * exponential backoff, at most max_attempts times; then the message is
 * dropped with its reason logged.  Loop thread only.
 */
#ifndef KILN_MASTER_CURL_UV_H
#define KILN_MASTER_CURL_UV_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

struct curl_uv;
struct curl_uv_queue;

/* The libcurl functions a queue's setup callback may call (dlopened). */
struct curl_uv_api {
	CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	const char *(*easy_strerror)(CURLcode code);
};
/* Valid once curl_uv_new() returned 0. */
extern struct curl_uv_api curl_uv_api;

/* How a message ended (curl_uv_queue_ops.done). */
enum curl_uv_outcome {
	CURL_UV_SENT,
	CURL_UV_FAILED,  /* a permanent error, or the last attempt failed */
	CURL_UV_DROPPED, /* pushed out of a full queue, or the queue was freed */
};

struct curl_uv_queue_ops {
	/* Sets the transfer's options on h (URL, SMTP envelope, headers ...);
	 * the body is read from the message through CURLOPT_READFUNCTION, set
	 * by the queue, with CURLOPT_INFILESIZE_LARGE.  priv is the message's.
	 * Lists it allocates are returned in *ret_list (freed after the
	 * transfer).  0, or negative: the message fails at once. */
	int (*setup)(void *ud, void *priv, CURL *h, struct curl_slist **ret_list);
	/* The message ended; err is the reason when not sent (borrowed). */
	void (*done)(void *ud, void *priv, enum curl_uv_outcome outcome, const char *err);
	/* Frees priv (after done). NULL: nothing to free. */
	void (*free)(void *priv);
};

struct curl_uv_queue_limits {
	size_t max_jobs;       /* waiting plus running messages */
	size_t max_bytes;      /* of their bodies */
	uint64_t timeout_ms;   /* one attempt, connection included */
	unsigned max_attempts; /* 1: no retry */
	uint64_t backoff_ms;   /* before the 2nd attempt; doubles, capped at 64x */
};

/* Loads libcurl (once per process) and makes the multi handle on loop.
 * 0 and *ret, or -ENOENT with *ret_err (static text): no libcurl. */
int curl_uv_new(uv_loop_t *loop, struct curl_uv **ret, const char **ret_err);
/* Stops every transfer (queued messages are dropped, their number logged)
 * and frees the handles; the memory goes once libuv closed them, so run
 * the loop afterwards.  NULL-safe. */
void curl_uv_free(struct curl_uv *cu);

/* A queue named name (for messages: "reporter 'mail'"), with its limits
 * and callbacks (ops borrowed, must outlive the queue). */
struct curl_uv_queue *curl_uv_queue_new(struct curl_uv *cu, const char *name,
					const struct curl_uv_queue_limits *lim,
					const struct curl_uv_queue_ops *ops, void *ud);

/* Queues a message with body[0..len) (copied) and priv (owned by the queue
 * from here: ops->free).  Never blocks.  0, or -E2BIG: the body alone is
 * over the queue's max_bytes (then done(FAILED) was called and priv freed). */
int curl_uv_submit(struct curl_uv_queue *q, const char *body, size_t len, void *priv);

/* Counters, for tests and logs. */
struct curl_uv_stats {
	size_t queued; /* waiting or running */
	size_t bytes;  /* of their bodies */
	uint64_t sent, failed, dropped, retries;
};
void curl_uv_queue_stats(const struct curl_uv_queue *q, struct curl_uv_stats *ret);

/* Whether a failure is worth another attempt: transport errors and
 * timeouts, SMTP 4xx replies, HTTP 408, 429 and 5xx. */
int curl_uv_transient(CURLcode rc, long response_code, int smtp);

#endif
