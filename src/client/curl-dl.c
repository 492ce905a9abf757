/*
 * Loading libcurl on first use; see curl-dl.h for why the daemon binary
 * does not link it.
 */
#include "client/curl-dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>

struct curl_dl curl_dl;

static bool curl_dl_sym(void *lib, const char *name, void *ret_fn)
{
	void *p = dlsym(lib, name);
	if (!p)
		return false;
	/* POSIX guarantees that object and function pointers convert */
	memcpy(ret_fn, &p, sizeof(p));
	return true;
}

int curl_dl_load(const char **ret_err)
{
	static int state; /* 0 not tried, 1 loaded, -1 failed */
	static const char *err;

	if (state == 0) {
		void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
		if (!lib) {
			err = "cannot load libcurl.so.4 (install Debian's libcurl4)";
			state = -1;
		} else if (!curl_dl_sym(lib, "curl_global_init", &curl_dl.global_init) ||
			   !curl_dl_sym(lib, "curl_easy_init", &curl_dl.easy_init) ||
			   !curl_dl_sym(lib, "curl_easy_setopt", &curl_dl.easy_setopt) ||
			   !curl_dl_sym(lib, "curl_easy_perform", &curl_dl.easy_perform) ||
			   !curl_dl_sym(lib, "curl_easy_getinfo", &curl_dl.easy_getinfo) ||
			   !curl_dl_sym(lib, "curl_easy_reset", &curl_dl.easy_reset) ||
			   !curl_dl_sym(lib, "curl_easy_cleanup", &curl_dl.easy_cleanup) ||
			   !curl_dl_sym(lib, "curl_easy_strerror", &curl_dl.easy_strerror) ||
			   !curl_dl_sym(lib, "curl_easy_escape", &curl_dl.easy_escape) ||
			   !curl_dl_sym(lib, "curl_free", &curl_dl.free) ||
			   !curl_dl_sym(lib, "curl_slist_append", &curl_dl.slist_append) ||
			   !curl_dl_sym(lib, "curl_slist_free_all", &curl_dl.slist_free_all)) {
			err = "libcurl.so.4 lacks a function kiln needs";
			state = -1;
		} else if (curl_dl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			err = "libcurl failed to initialise";
			state = -1;
		} else {
			state = 1;
		}
	}
	if (state < 0) {
		if (ret_err)
			*ret_err = err;
		return -ENOENT;
	}
	return 0;
}
