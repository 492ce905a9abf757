/*
 * Worker-protocol message codec (msg.h): strict decoding of one msgpack map
 * per WebSocket message, typed accessors, and packing helpers.  Used by the
 * master's worker endpoint and by kiln-worker alike.
 */
#include "proto/msg.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

static uint64_t be_read(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Walks the msgpack bytes without building anything: checks that exactly one
 * complete value fills data, that nesting stays within KILN_MAX_MSGPACK_DEPTH
 * and that no container claims more elements than bytes remain.  msgpack-c
 * allocates a container's element array up front from its header count, so
 * without this a 5-byte input could ask for gigabytes.
 *
 * It also adds up what the unpacked tree will take: every array element and
 * every map key and value is one msgpack_object (24 bytes on 64-bit) in the
 * zone, so a 1-byte nil costs 24.  Strings, bins and exts are referenced in
 * place by msgpack_unpack_next() (zero-copy), so they cost nothing more; the
 * zone's own chunk headers are small next to the cap.  The total is refused
 * past KILN_MAX_MSGPACK_DECODED before anything is allocated.
 */
static int msg_prescan(const uint8_t *p, size_t len)
{
	uint64_t left[KILN_MAX_MSGPACK_DEPTH + 1]; /* values still to read per level */
	int top = 0;
	size_t pos = 0;
	uint64_t objects = 0; /* zone-allocated objects so far */

	left[0] = 1;
	while (top >= 0) {
		if (left[top] == 0) {
			top--;
			continue;
		}
		left[top]--;
		if (pos >= len)
			return KILN_EPROTO;
		uint8_t b = p[pos++];
		uint64_t skip = 0, items = 0; /* payload bytes; child values */
		unsigned lenbytes = 0;        /* size of a length field that follows */
		unsigned extra = 0;           /* ext type byte */

		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b >= 0x80 && b <= 0x8f) {
			items = 2u * (b & 0x0f);
		} else if (b >= 0x90 && b <= 0x9f) {
			items = b & 0x0f;
		} else if (b >= 0xa0 && b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4:
			case 0xd9:
				lenbytes = 1;
				break; /* bin8, str8 */
			case 0xc5:
			case 0xda:
				lenbytes = 2;
				break; /* bin16, str16 */
			case 0xc6:
			case 0xdb:
				lenbytes = 4;
				break; /* bin32, str32 */
			case 0xc7:
				lenbytes = 1;
				extra = 1;
				break; /* ext8 */
			case 0xc8:
				lenbytes = 2;
				extra = 1;
				break; /* ext16 */
			case 0xc9:
				lenbytes = 4;
				extra = 1;
				break; /* ext32 */
			case 0xca:
				skip = 4;
				break; /* float32 */
			case 0xcb:
				skip = 8;
				break; /* float64 */
			case 0xcc:
			case 0xd0:
				skip = 1;
				break; /* (u)int8 */
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xd4:
				skip = 2;
				break; /* fixext1..16 + type */
			case 0xd5:
				skip = 3;
				break;
			case 0xd6:
				skip = 5;
				break;
			case 0xd7:
				skip = 9;
				break;
			case 0xd8:
				skip = 17;
				break;
			case 0xdc:
			case 0xdd:
			case 0xde:
			case 0xdf: { /* array16/32, map16/32 */
				unsigned n = (b == 0xdc || b == 0xde) ? 2 : 4;
				if (len - pos < n)
					return KILN_EPROTO;
				items = be_read(p + pos, n);
				pos += n;
				if (b >= 0xde)
					items *= 2;
				break;
			}
			default: /* 0xc1 is never used */
				return KILN_EPROTO;
			}
		}
		if (lenbytes) {
			if (len - pos < lenbytes)
				return KILN_EPROTO;
			skip = be_read(p + pos, lenbytes) + extra;
			pos += lenbytes;
		}
		if (skip > len - pos)
			return KILN_EPROTO;
		pos += skip;
		if (items) {
			/* every child takes at least one byte */
			if (items > len - pos || top + 1 > KILN_MAX_MSGPACK_DEPTH)
				return KILN_EPROTO;
			objects += items; /* items <= len, so no overflow */
			if (objects > KILN_MAX_MSGPACK_DECODED / sizeof(msgpack_object))
				return KILN_EPROTO;
			left[++top] = items;
		}
	}
	return pos == len ? 0 : KILN_EPROTO;
}

int proto_msg_decode(const void *data, size_t len, struct proto_msg *ret)
{
	if (!data || len == 0 || len > KILN_MAX_WS_FRAME)
		return KILN_EPROTO;
	if (msg_prescan(data, len) < 0)
		return KILN_EPROTO;

	msgpack_unpacked up;
	size_t off = 0;
	msgpack_unpacked_init(&up);
	msgpack_unpack_return r = msgpack_unpack_next(&up, data, len, &off);
	if (r != MSGPACK_UNPACK_SUCCESS || off != len || up.data.type != MSGPACK_OBJECT_MAP)
		goto fail;

	/* root lives in the zone so a proto_msg can be moved by value */
	msgpack_object *root = msgpack_zone_malloc(up.zone, sizeof(*root));
	if (!root)
		goto fail;
	*root = up.data;

	const msgpack_object *op_obj = proto_map_get(root, "op");
	struct str op;
	int64_t seq;
	if (!op_obj || op_obj->type != MSGPACK_OBJECT_STR || !proto_obj_str(op_obj, &op) ||
	    !proto_obj_int(proto_map_get(root, "seq_number"), &seq))
		goto fail;

	ret->up = up;
	ret->root = root;
	ret->op = op;
	ret->seq = seq;
	return 0;

fail:
	msgpack_unpacked_destroy(&up);
	return KILN_EPROTO;
}

void proto_msg_release(struct proto_msg *m)
{
	if (!m)
		return;
	if (m->up.zone)
		msgpack_unpacked_destroy(&m->up);
	m->root = NULL;
	m->op = (struct str){NULL, 0};
}

const msgpack_object *proto_map_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP || !key)
		return NULL;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
		    (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0))
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

bool proto_obj_str(const msgpack_object *o, struct str *ret)
{
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_STR) {
		*ret = (struct str){o->via.str.ptr, o->via.str.size};
		return true;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		*ret = (struct str){o->via.bin.ptr, o->via.bin.size};
		return true;
	}
	return false;
}

bool proto_obj_int(const msgpack_object *o, int64_t *ret)
{
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return false;
		*ret = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*ret = o->via.i64;
		return true;
	}
	return false;
}

bool proto_obj_double(const msgpack_object *o, double *ret)
{
	if (!o)
		return false;
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*ret = o->via.f64;
		return true;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*ret = (double)o->via.u64;
		return true;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*ret = (double)o->via.i64;
		return true;
	default:
		return false;
	}
}

bool proto_obj_bool(const msgpack_object *o, bool *ret)
{
	if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*ret = o->via.boolean;
	return true;
}

bool proto_obj_nil(const msgpack_object *o)
{
	return !o || o->type == MSGPACK_OBJECT_NIL;
}

char *proto_obj_strdup(const msgpack_object *o)
{
	struct str s;
	if (!proto_obj_str(o, &s))
		return NULL;
	return xstrndup(s.len ? s.p : "", s.len);
}

void proto_enc_init(struct proto_enc *e)
{
	msgpack_sbuffer_init(&e->sb);
	msgpack_packer_init(&e->pk, &e->sb, msgpack_sbuffer_write);
}

void proto_enc_release(struct proto_enc *e)
{
	msgpack_sbuffer_destroy(&e->sb);
	msgpack_sbuffer_init(&e->sb);
}

void proto_enc_reset(struct proto_enc *e)
{
	msgpack_sbuffer_clear(&e->sb);
}

void proto_pack_str(struct proto_enc *e, const char *s)
{
	if (!s)
		proto_pack_nil(e);
	else
		proto_pack_strn(e, s, strlen(s));
}

void proto_pack_strn(struct proto_enc *e, const char *s, size_t n)
{
	msgpack_pack_str_with_body(&e->pk, s, n);
}

void proto_pack_int(struct proto_enc *e, int64_t v)
{
	msgpack_pack_int64(&e->pk, v);
}

void proto_pack_double(struct proto_enc *e, double v)
{
	msgpack_pack_double(&e->pk, v);
}

void proto_pack_bool(struct proto_enc *e, bool v)
{
	if (v)
		msgpack_pack_true(&e->pk);
	else
		msgpack_pack_false(&e->pk);
}

void proto_pack_nil(struct proto_enc *e)
{
	msgpack_pack_nil(&e->pk);
}

void proto_pack_map(struct proto_enc *e, uint32_t n)
{
	msgpack_pack_map(&e->pk, n);
}

void proto_pack_array(struct proto_enc *e, uint32_t n)
{
	msgpack_pack_array(&e->pk, n);
}

void proto_pack_bin(struct proto_enc *e, const void *p, size_t n)
{
	msgpack_pack_bin_with_body(&e->pk, p, n);
}

void proto_pack_object(struct proto_enc *e, const msgpack_object *o)
{
	if (!o)
		proto_pack_nil(e);
	else
		msgpack_pack_object(&e->pk, *o);
}

void proto_enc_response_nil(struct proto_enc *e, int64_t seq)
{
	proto_pack_map(e, 3);
	proto_pack_str(e, "op");
	proto_pack_str(e, "response");
	proto_pack_str(e, "seq_number");
	proto_pack_int(e, seq);
	proto_pack_str(e, "result");
	proto_pack_nil(e);
}

void proto_enc_response_error(struct proto_enc *e, int64_t seq, const char *message)
{
	proto_pack_map(e, 4);
	proto_pack_str(e, "op");
	proto_pack_str(e, "response");
	proto_pack_str(e, "seq_number");
	proto_pack_int(e, seq);
	proto_pack_str(e, "result");
	proto_pack_str(e, message ? message : "");
	proto_pack_str(e, "is_exception");
	proto_pack_bool(e, true);
}
