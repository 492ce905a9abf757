/*
 * The file transfer steps, as Buildbot's FileUpload, DirectoryUpload,
 * FileDownload, StringDownload and JSONPropertiesDownload: file_upload { },
 * directory_upload { }, file_download { }, string_download { } and
 * json_properties_download { } (steps/step-transfer.c runs them).  Paths may
 * be renderables; a plain masterdest is checked here so that checkconfig
 * names one leaving the build's artifact directory.
 */
#include "config/config-internal.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* What each declaration reads besides name, workdir and the flags. */
enum {
	XFER_SRC = 1 << 0,       /* workersrc / mastersrc / s, required */
	XFER_DEST = 1 << 1,      /* masterdest / workerdest, required */
	XFER_MAXSIZE = 1 << 2,   /* maxsize */
	XFER_MODE = 1 << 3,      /* mode */
	XFER_KEEPSTAMP = 1 << 4, /* keepstamp and url (file_upload) */
	XFER_COMPRESS = 1 << 5,  /* compress (directory_upload) */
};

struct config_xfer_decl {
	const char *decl;
	enum config_step_kind kind;
	const char *src_key, *dest_key;
	unsigned what;
	bool dest_on_master; /* dest is checked as a path inside the artifact dir */
};

/* mode = 420 or mode = "0644": permission bits, at most 07777. */
static int config_xfer_mode(lua_State *L, const char *what)
{
	int type = dsl_get(L, 1, "mode");
	long long v = -1;
	if (type == LUA_TNUMBER) {
		int ok;
		v = lua_tointegerx(L, -1, &ok);
		if (!ok)
			v = -2;
	} else if (type == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		char *end = NULL;
		v = (len && len <= 5 && strspn(s, "01234567") == len) ? strtoll(s, &end, 8) : -2;
	} else if (type != LUA_TNIL) {
		v = -2;
	}
	lua_pop(L, 1);
	if (v < -1 || v > 07777)
		config_raise(L,
			     "%s: 'mode' must be permission bits: an octal string such as "
			     "\"0644\" or a number up to 4095",
			     what);
	return (int)v;
}

static int config_xfer_declare(lua_State *L, const struct config_xfer_decl *d)
{
	/* the flags and the options every kind takes (DSL_STEP_FLAG_KEYS: read
	 * by config_step_options), then the kind's own */
	static const char *const common[] = {"name", "workdir", DSL_STEP_FLAG_KEYS};
	const char *keys[ARRAY_SIZE(common) + 8];
	size_t nk = 0;
	for (size_t i = 0; i < ARRAY_SIZE(common); i++)
		keys[nk++] = common[i];
	if (d->src_key)
		keys[nk++] = d->src_key;
	keys[nk++] = d->dest_key;
	if (d->what & XFER_MAXSIZE)
		keys[nk++] = "maxsize";
	if (d->what & XFER_MODE)
		keys[nk++] = "mode";
	if (d->what & XFER_KEEPSTAMP) {
		keys[nk++] = "keepstamp";
		keys[nk++] = "url";
	}
	if (d->what & XFER_COMPRESS)
		keys[nk++] = "compress";
	keys[nk] = NULL;

	int line = config_line(L);
	dsl_check_table_arg(L, d->decl);
	char what[256];
	dsl_what(L, what, sizeof(what), d->decl, NULL);
	dsl_check_keys(L, 1, what, keys);
	const char *name = dsl_opt_name(L, 1, what, "name");
	size_t wlen = 0;
	const char *workdir = dsl_opt_string(L, 1, what, "workdir", &wlen);
	if (workdir)
		dsl_check_relpath(L, what, "workdir", workdir, wlen);
	struct config_step flags = dsl_step_flags(L, what);
	unsigned long long maxsize = 0;
	if (d->what & XFER_MAXSIZE)
		maxsize = (unsigned long long)dsl_opt_int(L, 1, what, "maxsize", 0, 1,
							  (long long)1 << 50);
	int mode = (d->what & XFER_MODE) ? config_xfer_mode(L, what) : -1;
	bool keepstamp = (d->what & XFER_KEEPSTAMP) && dsl_opt_bool(L, 1, what, "keepstamp", false);
	const char *compress = NULL;
	if (d->what & XFER_COMPRESS) {
		compress = dsl_opt_string(L, 1, what, "compress", NULL);
		if (compress && strcmp(compress, "gz") && strcmp(compress, "bz2"))
			config_raise(L, "%s: 'compress' must be \"gz\" or \"bz2\" (got '%.20s')",
				     what, compress);
	}

	struct config_step *step = lua_newuserdatauv(L, sizeof(*step), 1 /* fp (config-fp.c) */);
	*step = flags;
	step->kind = d->kind;
	step->line = line;
	luaL_setmetatable(L, MT_STEP);
	int ud = lua_gettop(L);
	config_charge(L, sizeof(struct config_transfer));
	struct config_transfer *t = step->transfer = xcalloc(1, sizeof(*t));
	t->maxsize = maxsize;
	t->mode = mode;
	t->keepstamp = keepstamp;
	if (compress)
		memcpy(t->compress, compress, strlen(compress) + 1);
	if (d->src_key) {
		if (dsl_get(L, 1, d->src_key) == LUA_TNIL)
			config_raise(L, "%s: '%s' is required", what, d->src_key);
		config_read_rstr(L, lua_gettop(L), what, d->src_key, &t->src);
		lua_settop(L, ud);
	}
	if (dsl_get(L, 1, d->dest_key) == LUA_TNIL)
		config_raise(L, "%s: '%s' is required", what, d->dest_key);
	config_read_rstr(L, lua_gettop(L), what, d->dest_key, &t->dest);
	lua_settop(L, ud);
	/* a plain path is checked now; a rendered one when the step runs */
	if (d->dest_on_master && t->dest.text && !t->dest.interp)
		dsl_check_relpath(L, what, d->dest_key, t->dest.text, strlen(t->dest.text));
	if (d->what & XFER_KEEPSTAMP) {
		if (dsl_get(L, 1, "url") != LUA_TNIL)
			config_read_rstr(L, lua_gettop(L), what, "url", &t->url);
		lua_settop(L, ud);
	}
	const char *def = name ? name : d->decl;
	step->name = config_strdup(L, def, strlen(def));
	step->workdir = config_strdup(L, workdir ? workdir : "build", workdir ? wlen : 5);
	lua_settop(L, ud);
	return 1;
}

int config_step_file_upload(lua_State *L)
{
	static const struct config_xfer_decl d = {"file_upload",
						  CONFIG_STEP_FILE_UPLOAD,
						  "workersrc",
						  "masterdest",
						  XFER_MAXSIZE | XFER_MODE | XFER_KEEPSTAMP,
						  true};
	return config_xfer_declare(L, &d);
}

int config_step_directory_upload(lua_State *L)
{
	static const struct config_xfer_decl d = {
		"directory_upload", CONFIG_STEP_DIRECTORY_UPLOAD, "workersrc",
		"masterdest",       XFER_MAXSIZE | XFER_COMPRESS, true};
	return config_xfer_declare(L, &d);
}

int config_step_file_download(lua_State *L)
{
	static const struct config_xfer_decl d = {
		"file_download", CONFIG_STEP_FILE_DOWNLOAD, "mastersrc",
		"workerdest",    XFER_MAXSIZE | XFER_MODE,  false};
	return config_xfer_declare(L, &d);
}

int config_step_string_download(lua_State *L)
{
	static const struct config_xfer_decl d = {"string_download",
						  CONFIG_STEP_STRING_DOWNLOAD,
						  "s",
						  "workerdest",
						  XFER_MODE,
						  false};
	return config_xfer_declare(L, &d);
}

int config_step_json_properties_download(lua_State *L)
{
	static const struct config_xfer_decl d = {"json_properties_download",
						  CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD,
						  NULL,
						  "workerdest",
						  0,
						  false};
	return config_xfer_declare(L, &d);
}

void config_step_transfer_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->transfer = NULL;
	const struct config_transfer *s = src->transfer;
	if (!s)
		return;
	config_charge(L, sizeof(*s));
	struct config_transfer *t = dst->transfer = xcalloc(1, sizeof(*t));
	t->maxsize = s->maxsize;
	t->mode = s->mode;
	t->keepstamp = s->keepstamp;
	memcpy(t->compress, s->compress, sizeof(t->compress));
	config_rstr_copy(L, &t->src, &s->src);
	config_rstr_copy(L, &t->dest, &s->dest);
	config_rstr_copy(L, &t->url, &s->url);
}

void config_step_transfer_release(struct config_step *s)
{
	struct config_transfer *t = s->transfer;
	if (!t)
		return;
	free(t->src.text);
	free(t->dest.text);
	free(t->url.text);
	free(t);
	s->transfer = NULL;
}
