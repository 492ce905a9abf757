/*
 * libFuzzer target for what REST clients send the master (src/master/
 * api-parse.c, http.c): the input as a JSON-RPC request body (envelope
 * checks), and as a query string split into arguments and parsed as a
 * Buildbot ResultSpec for every resource.  No network, no engine.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/limits.h"
#include "master/api-int.h"
#include "master/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum db_resource fuzz_resources[] = {
	DB_MASTERS, DB_BUILDERS, DB_WORKERS, DB_BUILDSETS,    DB_BUILDREQUESTS,
	DB_BUILDS,  DB_STEPS,    DB_LOGS,    DB_SOURCESTAMPS,
};

static void fuzz_rpc(const char *body, size_t size)
{
	struct api_rpc rpc;
	json_t *reply = NULL;
	int status = api_rpc_parse("application/json", body, size, &rpc, &reply);
	if (status) {
		if (status != 400 || !json_is_object(reply))
			abort();
		char *s = json_dumps(reply, 0); /* the error body must encode */
		if (!s)
			abort();
		free(s);
		json_decref(reply);
		return;
	}
	if (!rpc.method || !json_is_object(rpc.params) || !rpc.id)
		abort();
	json_t *err = api_rpc_error_doc(rpc.id, -32601, rpc.method);
	json_decref(err);
	api_rpc_release(&rpc);
}

static void fuzz_query(const char *qs, size_t size)
{
	struct http_arg *args = NULL;
	size_t n = 0;
	if (http_query_parse(qs, size, KILN_MAX_HTTP_QUERY_ARGS, &args, &n) < 0)
		return;
	if (n > KILN_MAX_HTTP_QUERY_ARGS)
		abort();
	for (size_t i = 0; i < sizeof(fuzz_resources) / sizeof(fuzz_resources[0]); i++) {
		struct api_rspec rs;
		char *err = NULL;
		enum db_resource res = fuzz_resources[i];
		if (api_rspec_parse(res, args, n, res == DB_BUILDS, &rs, &err) < 0) {
			if (!err)
				abort();
			free(err);
			continue;
		}
		api_rspec_add_eq(&rs, "buildid", "1");
		for (size_t k = 0; k < rs.nfilters; k++)
			if (!rs.filters[k].field || rs.filters[k].nvalues == 0)
				abort();
		api_rspec_release(&rs);
	}
	http_args_free(args, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_rpc((const char *)data, size);
	fuzz_query((const char *)data, size);
	return 0;
}
