/*
 * Lua 5.4's pattern matching (string.find, string.match, string.gmatch,
 * string.gsub, as the reference manual, section 6.4.1, describes them)
 * written for the config sandbox: every step of the matcher is counted and
 * handed to a charge callback, so a backtracking pattern on a long subject
 * stops where the sandbox's budget ends instead of running inside one C
 * call that no instruction hook can interrupt.  Only src/config/ uses it.
 */
#ifndef KILN_CONFIG_PATTERN_H
#define KILN_CONFIG_PATTERN_H

#include <lua.h>

/* The matcher reports its work in batches of at most this many steps. */
#define CONFIG_PATTERN_CHARGE_EVERY 4096

struct config_pattern_ops {
	/* Called with the steps done since the last call (at most
	 * CONFIG_PATTERN_CHARGE_EVERY) while matching, and with the rest when
	 * a call ends.  fname names the Lua function ("string.find").  It may
	 * raise a Lua error (lua_error) to stop the match: the matcher holds
	 * nothing that needs freeing. */
	void (*charge)(lua_State *L, unsigned long steps, const char *fname);
};

/* Sets find, match, gmatch and gsub in the table at idx (the string
 * library's table) to the counted versions.  ops is borrowed and must
 * outlive L.  Semantics, results and error cases are those of Lua 5.4's
 * own functions; error messages have the same wording. */
void config_pattern_register(lua_State *L, int idx, const struct config_pattern_ops *ops);

#endif
