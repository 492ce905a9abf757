/*
 * libFuzzer target for the worker-protocol decoder (src/proto/msg.c):
 * decode one message, walk every value through the typed accessors, and
 * re-encode it; a re-encoded message must decode again to the same op/seq.
 */
#include <stdint.h>
#include <stdlib.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_walk(const msgpack_object *o, int depth)
{
	struct str s;
	int64_t i;
	double d;
	bool b;
	(void)proto_obj_str(o, &s);
	(void)proto_obj_int(o, &i);
	(void)proto_obj_double(o, &d);
	(void)proto_obj_bool(o, &b);
	(void)proto_obj_nil(o);
	free(proto_obj_strdup(o));
	if (depth > 64)
		abort(); /* the decoder promised a depth cap */
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t k = 0; k < o->via.array.size; k++)
			fuzz_walk(&o->via.array.ptr[k], depth + 1);
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t k = 0; k < o->via.map.size; k++) {
			fuzz_walk(&o->via.map.ptr[k].key, depth + 1);
			fuzz_walk(&o->via.map.ptr[k].val, depth + 1);
		}
		(void)proto_map_get(o, "args");
		(void)proto_map_get(o, "");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_msg m;
	if (proto_msg_decode(data, size, &m) < 0)
		return 0;
	fuzz_walk(m.root, 0);

	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_object(&e, m.root);
	struct proto_msg again;
	if (proto_msg_decode(e.sb.data, e.sb.size, &again) < 0)
		abort();
	if (again.seq != m.seq || again.op.len != m.op.len)
		abort();
	proto_msg_release(&again);
	proto_enc_release(&e);
	proto_msg_release(&m);
	return 0;
}
