/*
 * Failed-login backoff per client address (authlimit.h): a small table of
 * addresses with their failure count, refusal window and log summary, used
 * by the worker listener's Basic auth (http-ws.c) and the change hooks'
 * tokens and signatures (changes/hook.c).  Pure; the callers log.
 */
#include "master/authlimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"

struct authlimit_entry {
	char key[INET6_ADDRSTRLEN + 4]; /* normalised address ("" = free slot) */
	unsigned failures;              /* since the address was last forgotten */
	uint64_t window_ms;             /* current window length (0: none yet) */
	uint64_t until_ms;              /* the window closes then */
	uint64_t last_ms;               /* last attempt seen */
	uint64_t last_log_ms;
	bool logged;           /* its first failure was logged */
	unsigned sum_failures; /* since the last line */
	unsigned sum_refused;
};

struct authlimit {
	struct authlimit_cfg cfg;
	struct authlimit_entry *v; /* owned, cfg.max_addrs slots */
	size_t n;                  /* slots in use */
};

void authlimit_cfg_default(struct authlimit_cfg *ret)
{
	*ret = (struct authlimit_cfg){
		.free_failures = KILN_AUTH_FREE_FAILURES,
		.first_ms = KILN_AUTH_BACKOFF_FIRST_MS,
		.max_ms = KILN_AUTH_BACKOFF_MAX_MS,
		.forget_ms = KILN_AUTH_FORGET_MS,
		.log_every_ms = KILN_AUTH_LOG_EVERY_MS,
		.max_addrs = KILN_AUTH_MAX_ADDRS,
	};
	const char *e = getenv("KILN_AUTH_BACKOFF_MAX_MS");
	if (e && *e) {
		char *end;
		unsigned long long v = strtoull(e, &end, 10);
		if (!*end && v > 0 && v < ret->max_ms) {
			ret->max_ms = v;
			if (ret->first_ms > v)
				ret->first_ms = v;
		}
	}
}

struct authlimit *authlimit_new(const struct authlimit_cfg *cfg)
{
	struct authlimit *al = xcalloc(1, sizeof(*al));
	al->cfg = *cfg;
	if (al->cfg.max_addrs == 0)
		al->cfg.max_addrs = 1;
	al->v = xcalloc(al->cfg.max_addrs, sizeof(*al->v));
	return al;
}

void authlimit_free(struct authlimit *al)
{
	if (!al)
		return;
	free(al->v);
	free(al);
}

size_t authlimit_count(const struct authlimit *al)
{
	return al->n;
}

/* IPv4 as is (also when mapped into IPv6), IPv6 by its /64, anything else
 * truncated to the key's size. */
static void authlimit_key(const char *addr, char *out, size_t size)
{
	unsigned char a[16];
	if (inet_pton(AF_INET6, addr, a) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (!memcmp(a, mapped, sizeof(mapped))) {
			if (inet_ntop(AF_INET, a + 12, out, (socklen_t)size))
				return;
		} else {
			memset(a + 8, 0, 8);
			if (inet_ntop(AF_INET6, a, out, (socklen_t)size)) {
				size_t l = strlen(out);
				snprintf(out + l, size - l, "/64");
				return;
			}
		}
	}
	snprintf(out, size, "%s", addr);
}

static struct authlimit_entry *authlimit_find(struct authlimit *al, const char *key)
{
	for (size_t i = 0; i < al->n; i++)
		if (!strcmp(al->v[i].key, key))
			return &al->v[i];
	return NULL;
}

static void authlimit_remove(struct authlimit *al, struct authlimit_entry *e)
{
	*e = al->v[--al->n];
	al->v[al->n] = (struct authlimit_entry){0};
}

/* The entry for key if it is still remembered at now (a quiet one, its
 * window closed, is forgotten here). */
static struct authlimit_entry *authlimit_live(struct authlimit *al, const char *key, uint64_t now)
{
	struct authlimit_entry *e = authlimit_find(al, key);
	if (e && now >= e->until_ms && now - e->last_ms >= al->cfg.forget_ms) {
		authlimit_remove(al, e);
		return NULL;
	}
	return e;
}

static void authlimit_note(const struct authlimit *al, struct authlimit_entry *e, uint64_t now,
			   struct authlimit_note *ret_note)
{
	struct authlimit_note n = {
		.retry_ms = e->until_ms > now ? e->until_ms - now : 0,
	};
	if (!e->logged || now - e->last_log_ms >= al->cfg.log_every_ms) {
		n.log = true;
		n.first = !e->logged;
		n.failures = e->sum_failures;
		n.refused = e->sum_refused;
		e->logged = true;
		e->last_log_ms = now;
		e->sum_failures = e->sum_refused = 0;
	}
	if (ret_note)
		*ret_note = n;
}

uint64_t authlimit_check(struct authlimit *al, const char *addr, uint64_t now_ms,
			 struct authlimit_note *ret_note)
{
	char key[sizeof(al->v[0].key)];
	authlimit_key(addr, key, sizeof(key));
	if (ret_note)
		*ret_note = (struct authlimit_note){0};
	struct authlimit_entry *e = authlimit_live(al, key, now_ms);
	if (!e || now_ms >= e->until_ms)
		return 0;
	e->sum_refused++;
	e->last_ms = now_ms;
	authlimit_note(al, e, now_ms, ret_note);
	return e->until_ms - now_ms;
}

void authlimit_failed(struct authlimit *al, const char *addr, uint64_t now_ms,
		      struct authlimit_note *ret_note)
{
	char key[sizeof(al->v[0].key)];
	authlimit_key(addr, key, sizeof(key));
	struct authlimit_entry *e = authlimit_live(al, key, now_ms);
	if (!e) {
		if (al->n == al->cfg.max_addrs) {
			/* full: the least recently seen address goes */
			struct authlimit_entry *old = &al->v[0];
			for (size_t i = 1; i < al->n; i++)
				if (al->v[i].last_ms < old->last_ms)
					old = &al->v[i];
			authlimit_remove(al, old);
		}
		e = &al->v[al->n++];
		*e = (struct authlimit_entry){0};
		snprintf(e->key, sizeof(e->key), "%s", key);
	}
	e->last_ms = now_ms;
	e->sum_failures++;
	if (e->failures < UINT32_MAX)
		e->failures++;
	if (e->failures > al->cfg.free_failures) {
		if (e->window_ms == 0)
			e->window_ms = al->cfg.first_ms;
		else
			e->window_ms = e->window_ms > al->cfg.max_ms / 2 ? al->cfg.max_ms
									 : e->window_ms * 2;
		if (e->window_ms > al->cfg.max_ms)
			e->window_ms = al->cfg.max_ms;
		e->until_ms = now_ms + e->window_ms;
	}
	authlimit_note(al, e, now_ms, ret_note);
}

void authlimit_succeeded(struct authlimit *al, const char *addr)
{
	char key[sizeof(al->v[0].key)];
	authlimit_key(addr, key, sizeof(key));
	struct authlimit_entry *e = authlimit_find(al, key);
	if (e)
		authlimit_remove(al, e);
}

struct authlimit *authlimit_shared(enum authlimit_kind kind)
{
	static struct authlimit *shared[AUTHLIMIT_KINDS];
	if (!shared[kind]) {
		struct authlimit_cfg cfg;
		authlimit_cfg_default(&cfg);
		shared[kind] = authlimit_new(&cfg);
	}
	return shared[kind];
}
