/*
 * Error codes.  Fallible functions return >= 0 on success and a negative
 * code on failure: -errno values, or one of the project codes below, which
 * sit far outside errno's range.  err_str() names either kind.
 */
#ifndef KILN_ERR_H
#define KILN_ERR_H

enum {
	KILN_E_BASE = 10000,
	KILN_EPROTO = -(KILN_E_BASE + 1),    /* peer broke the worker protocol */
	KILN_ECONFIG = -(KILN_E_BASE + 2),   /* configuration is invalid */
	KILN_EDB = -(KILN_E_BASE + 3),       /* database error */
	KILN_ENOTFOUND = -(KILN_E_BASE + 4), /* no such object */
	KILN_EAUTH = -(KILN_E_BASE + 5),     /* authentication failed */
	KILN_EPARSE = -(KILN_E_BASE + 6),    /* malformed input */
	KILN_ETOOBIG = -(KILN_E_BASE + 7),   /* input over its cap */
	KILN_ESTATE = -(KILN_E_BASE + 8),    /* operation not valid in this state */
	KILN_ETIMEOUT = -(KILN_E_BASE + 9),  /* peer did not answer in time */
};

/* Human-readable text for r (negative); never NULL. */
const char *err_str(int r);

#endif
