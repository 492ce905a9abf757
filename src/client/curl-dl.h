/*
 * libcurl, loaded with dlopen() the first time a client command needs it.
 * The `kiln` binary is also the master daemon, which never speaks HTTP as
 * a client: linking libcurl (and the two dozen libraries it pulls in:
 * GnuTLS, Kerberos, LDAP, ...) would cost the daemon several MB of RSS for
 * nothing.  Include this instead of <curl/curl.h>: after curl_dl_load()
 * succeeded, the usual curl_* names work unchanged.
 */
#ifndef KILN_CURL_DL_H
#define KILN_CURL_DL_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

struct curl_dl {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_reset)(CURL *h);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode code);
	char *(*easy_escape)(CURL *h, const char *s, int len);
	void (*free)(void *p);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

/* The loaded functions; valid after curl_dl_load() returned 0. */
extern struct curl_dl curl_dl;

/* Loads libcurl once (later calls are free) and runs curl_global_init.
 * Returns 0, or -ENOENT with *ret_err (static text) saying why. */
int curl_dl_load(const char **ret_err);

#define curl_global_init curl_dl.global_init
#define curl_easy_init curl_dl.easy_init
#undef curl_easy_setopt
#define curl_easy_setopt curl_dl.easy_setopt
#define curl_easy_perform curl_dl.easy_perform
#undef curl_easy_getinfo
#define curl_easy_getinfo curl_dl.easy_getinfo
#define curl_easy_reset curl_dl.easy_reset
#define curl_easy_cleanup curl_dl.easy_cleanup
#define curl_easy_strerror curl_dl.easy_strerror
#define curl_easy_escape curl_dl.easy_escape
#define curl_free curl_dl.free
#define curl_slist_append curl_dl.slist_append
#define curl_slist_free_all curl_dl.slist_free_all

#endif
