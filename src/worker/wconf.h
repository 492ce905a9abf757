/*
 * kiln-worker's configuration file, DIR/worker.conf: "key = value" lines
 * (master, name, password or password_file, send_environ), written by
 * `kiln-worker create` with mode 0600 and read by `kiln-worker start`.
 */
#ifndef KILN_WORKER_WCONF_H
#define KILN_WORKER_WCONF_H

#include <stdbool.h>

struct wconf {
	char *master;        /* owned: "HOST:PORT" or "ws://HOST:PORT"; several separated
			      * by commas (conn_parse_master_list), also when the
			      * file has several master lines */
	char *name;          /* owned */
	char *password;      /* owned, may be NULL when password_file is set */
	char *password_file; /* owned, may be NULL */
	bool send_environ;
};

void wconf_release(struct wconf *c);
/* Reads DIR/worker.conf.  Returns 0, or -errno / KILN_ECONFIG with *ret_err
 * (owned) naming the problem. */
int wconf_load(const char *dir, struct wconf *ret, char **ret_err);
/* Writes DIR/worker.conf (0600). */
int wconf_save(const char *dir, const struct wconf *c);
/* The password: the inline one or the first line of password_file.  Owned. */
int wconf_password(const struct wconf *c, const char *dir, char **ret, char **ret_err);

#endif
