/*
 * Error code names; see err.h.
 */
#include "common/err.h"

#include <string.h>

const char *err_str(int r)
{
	switch (r) {
	case KILN_EPROTO:
		return "protocol error";
	case KILN_ECONFIG:
		return "invalid configuration";
	case KILN_EDB:
		return "database error";
	case KILN_ENOTFOUND:
		return "not found";
	case KILN_EAUTH:
		return "authentication failed";
	case KILN_EPARSE:
		return "malformed input";
	case KILN_ETOOBIG:
		return "input too large";
	case KILN_ESTATE:
		return "invalid state";
	case KILN_ETIMEOUT:
		return "timed out";
	}
	if (r < 0 && r > -KILN_E_BASE)
		return strerror(-r);
	return "unknown error";
}
