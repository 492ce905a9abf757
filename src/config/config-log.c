/*
 * The log_format setting of master.lua (slice "operator"): "text" (the
 * default) or "json", one JSON object per line (common/log.h).  Checked
 * when set, with the line.
 */
#include "config/config-internal.h"

#include <lauxlib.h>
#include <string.h>

bool config_log_setting(lua_State *L, const char *key)
{
	if (strcmp(key, "log_format"))
		return false;
	size_t len;
	const char *s = dsl_check_string(L, 3, "setting", key, &len);
	struct config *cfg = config_ctx_of(L)->cfg;
	if (!strcmp(s, "text"))
		cfg->log_json = false;
	else if (!strcmp(s, "json"))
		cfg->log_json = true;
	else
		config_raise(L, "'log_format' must be \"text\" or \"json\" (got '%.40s')", s);
	return true;
}
