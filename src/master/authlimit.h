/*
 * Failed-login backoff per client address, for worker passwords and change
 * hook tokens: a few failures are free, then each further failure opens a
 * refusal window that doubles up to a cap; while it is open, attempts from
 * that address are refused without looking at the secret.  An address
 * quiet for a while is forgotten, and a success forgets it at once.  The
 * table of addresses is bounded (the least recently seen is evicted).
 * IPv6 addresses count per /64, so one host cannot dodge by rotating.
 *
 * Pure: no I/O, no clock (the caller passes monotonic milliseconds), no
 * logging; the caller logs what the returned note says (one line for the
 * first failure, then one summary per interval and address).
 */
#ifndef KILN_MASTER_AUTHLIMIT_H
#define KILN_MASTER_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authlimit_cfg {
	unsigned free_failures; /* failures before the first window */
	uint64_t first_ms;      /* first refusal window; each failure after it doubles it */
	uint64_t max_ms;        /* longest window */
	uint64_t forget_ms;     /* an address quiet this long is forgotten */
	uint64_t log_every_ms;  /* summary interval per address */
	size_t max_addrs;       /* addresses tracked at once (>= 1) */
};

/* What the caller should log after a check or a failure. */
struct authlimit_note {
	bool log;          /* log a line now */
	bool first;        /* ... the address's first failure (else a summary) */
	unsigned failures; /* failures since the last line (the first one included) */
	unsigned refused;  /* attempts refused by the backoff since the last line */
	uint64_t retry_ms; /* the address's current window: ms until it closes (0: none) */
};

struct authlimit;

/* The defaults from limits.h (KILN_AUTH_*).  The environment variable
 * KILN_AUTH_BACKOFF_MAX_MS, when set to a positive integer, lowers the
 * longest window (and the first one, if larger): for tests. */
void authlimit_cfg_default(struct authlimit_cfg *ret);

/* A new, empty limiter (cfg copied); authlimit_free() releases it (NULL-safe). */
struct authlimit *authlimit_new(const struct authlimit_cfg *cfg);
void authlimit_free(struct authlimit *al);

/* Before checking a secret from addr (textual IPv4/IPv6 address, any
 * other string taken as is).  Returns 0 when the secret may be checked, or
 * the ms until addr's refusal window closes: then refuse without checking
 * (the refusal is counted for the summary).  ret_note may be NULL. */
uint64_t authlimit_check(struct authlimit *al, const char *addr, uint64_t now_ms,
			 struct authlimit_note *ret_note);
/* The secret from addr was wrong: counts it, opens or doubles the window
 * once the free failures are used up. */
void authlimit_failed(struct authlimit *al, const char *addr, uint64_t now_ms,
		      struct authlimit_note *ret_note);
/* The secret from addr was right: addr is forgotten. */
void authlimit_succeeded(struct authlimit *al, const char *addr);
/* Addresses tracked now (tests). */
size_t authlimit_count(const struct authlimit *al);

/* The process's shared limiters (created on first use with the defaults; on
 * the loop thread only): worker logins, change hook secrets, API tokens. */
enum authlimit_kind {
	AUTHLIMIT_WORKERS,
	AUTHLIMIT_HOOKS,
	AUTHLIMIT_TOKENS, /* unknown API tokens per address (apitoken.c, slice "authhard") */
	AUTHLIMIT_KINDS
};
struct authlimit *authlimit_shared(enum authlimit_kind kind);

#endif
