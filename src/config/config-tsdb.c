/*
 * The metrics_push setting of master.lua: where the master pushes the
 * numbers builds record (InfluxDB line protocol or Graphite plaintext over
 * TCP; the client is master/tsdb.c).  Checked when set (errors carry the
 * line) and copied into struct config (config.h "metrics push").
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

/* Longest host name DNS allows; longest prefix (it starts every series name). */
#define CONFIG_TSDB_MAX_HOST 253
#define CONFIG_TSDB_MAX_PREFIX 64

static bool config_tsdb_chars(const char *s, size_t len, const char *extra)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr(extra, c);
		if (!ok || c == '\0')
			return false;
	}
	return true;
}

bool config_tsdb_setting(lua_State *L, const char *key)
{
	static const char *const keys[] = {"protocol", "host", "port", "prefix", NULL};
	static const char *const what = "metrics_push";
	if (strcmp(key, "metrics_push"))
		return false;
	struct config *cfg = config_ctx_of(L)->cfg;
	if (lua_type(L, 3) != LUA_TTABLE)
		config_raise(L, "'metrics_push' must be a table: metrics_push = { protocol = "
				"\"influx\", host = \"127.0.0.1\", port = 8094 }");
	dsl_check_keys(L, 3, what, keys);

	size_t len;
	const char *proto = dsl_opt_string(L, 3, what, "protocol", &len);
	if (!proto)
		config_raise(L, "%s: 'protocol' is required: \"influx\" or \"graphite\"", what);
	enum config_tsdb_protocol protocol = CONFIG_TSDB_INFLUX;
	if (!strcmp(proto, "influx"))
		protocol = CONFIG_TSDB_INFLUX;
	else if (!strcmp(proto, "graphite"))
		protocol = CONFIG_TSDB_GRAPHITE;
	else
		config_raise(L, "%s: 'protocol' must be \"influx\" or \"graphite\" (got '%.60s')",
			     what, proto);

	size_t hlen;
	const char *host = dsl_opt_string(L, 3, what, "host", &hlen);
	if (!host)
		config_raise(L, "%s: 'host' is required (a host name or address)", what);
	if (hlen == 0 || hlen > CONFIG_TSDB_MAX_HOST || !config_tsdb_chars(host, hlen, ".-_:"))
		config_raise(L,
			     "%s: 'host' must be a host name or a numeric address, at most %d "
			     "bytes of letters, digits, '.', '-', '_' and ':' (got '%.60s')",
			     what, CONFIG_TSDB_MAX_HOST, host);

	long long port = dsl_opt_int(L, 3, what, "port", 0, 1, 65535);
	if (port == 0)
		config_raise(L, "%s: 'port' is required (1-65535)", what);

	size_t plen;
	const char *prefix = dsl_opt_string(L, 3, what, "prefix", &plen);
	if (!prefix) {
		prefix = "kiln";
		plen = 4;
	}
	if (plen == 0 || plen > CONFIG_TSDB_MAX_PREFIX || prefix[0] == '.' || prefix[0] == '-' ||
	    prefix[plen - 1] == '.' || !config_tsdb_chars(prefix, plen, "_.-"))
		config_raise(L,
			     "%s: 'prefix' must be at most %d bytes of letters, digits, '_', '.' "
			     "and '-', not starting with '.' or '-' nor ending with '.' (got "
			     "'%.60s')",
			     what, CONFIG_TSDB_MAX_PREFIX, prefix);

	config_charge(L, sizeof(struct config_metrics_push));
	config_tsdb_release(cfg); /* set twice: the last one wins, as any setting */
	struct config_metrics_push *mp = xcalloc(1, sizeof(*mp));
	mp->protocol = protocol;
	mp->port = (int)port;
	mp->line = config_line(L);
	cfg->metrics_push = mp; /* owned by cfg from here: a raise below frees it with cfg */
	mp->host = config_strdup(L, host, hlen);
	mp->prefix = config_strdup(L, prefix, plen);
	return true;
}

void config_tsdb_release(struct config *cfg)
{
	struct config_metrics_push *mp = cfg->metrics_push;
	if (!mp)
		return;
	free(mp->host);
	free(mp->prefix);
	free(mp);
	cfg->metrics_push = NULL;
}
