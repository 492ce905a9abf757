/*
 * The worker protocol's message codec: one msgpack map per WebSocket message
 * (see docs/PROTOCOL.md).  Decoding is strict and bounded (complete map, no
 * trailing bytes, depth and size caps from common/limits.h); encoding wraps
 * msgpack-c's packer over a growable sbuffer.  No logging, no event loop.
 */
#ifndef KILN_PROTO_MSG_H
#define KILN_PROTO_MSG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/str.h"

struct proto_msg {                  /* one decoded message */
	msgpack_unpacked up;        /* owns the zone */
	const msgpack_object *root; /* the top-level map; borrowed: lives in up's zone */
	struct str op;              /* borrowed from up */
	int64_t seq;                /* seq_number */
};

/*
 * Decodes exactly one msgpack map from data into *ret (which need not be
 * initialised).  Returns 0, or KILN_EPROTO (with nothing allocated and *ret
 * untouched) if data is not one complete map, has trailing bytes, lacks a str
 * 'op' or an int 'seq_number', nests deeper than KILN_MAX_MSGPACK_DEPTH, or
 * len > KILN_MAX_WS_FRAME, or would unpack to more than
 * KILN_MAX_MSGPACK_DECODED bytes of msgpack_object (one per array element,
 * map key and map value; strings stay in data).  Both are checked on the
 * wire bytes before msgpack-c allocates anything, so a hostile message
 * (a frame of 1-byte nils) costs at most that cap, not 24 times its size.
 * Strings and bins in *ret point into data, which must outlive *ret.
 * All pointers in *ret stay valid until proto_msg_release(); the struct
 * itself may be moved (root lives in the zone).
 */
int proto_msg_decode(const void *data, size_t len, struct proto_msg *ret);
/* Frees what decode allocated.  Safe on a zero-filled struct. */
void proto_msg_release(struct proto_msg *m);

/* Value of 'key' in map, or NULL if absent or map is NULL / not a map.  Borrowed. */
const msgpack_object *proto_map_get(const msgpack_object *map, const char *key);
/* Typed views.  Each returns false (and leaves *ret alone) if o is NULL or of another type. */
bool proto_obj_str(const msgpack_object *o, struct str *ret); /* str or bin; borrowed */
bool proto_obj_int(const msgpack_object *o, int64_t *ret);    /* pos/neg int within int64 */
bool proto_obj_double(const msgpack_object *o, double *ret);  /* float32/64 or int */
bool proto_obj_bool(const msgpack_object *o, bool *ret);
bool proto_obj_nil(const msgpack_object *o); /* NULL or nil */
/* A NUL-terminated copy (caller frees) of a str/bin, or NULL if o is not one. */
char *proto_obj_strdup(const msgpack_object *o);

/*
 * An encoder: a packer writing into its own buffer.  The packer points at
 * sb, so a proto_enc must not be moved after proto_enc_init().  The encoded
 * bytes are e->sb.data / e->sb.size.  Packing cannot fail short of OOM.
 */
struct proto_enc {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};
void proto_enc_init(struct proto_enc *e);
void proto_enc_release(struct proto_enc *e);
/* Empties the buffer, keeping its memory, for the next message. */
void proto_enc_reset(struct proto_enc *e);
void proto_pack_str(struct proto_enc *e, const char *s); /* NULL packs nil */
void proto_pack_strn(struct proto_enc *e, const char *s, size_t n);
void proto_pack_int(struct proto_enc *e, int64_t v);
void proto_pack_double(struct proto_enc *e, double v);
void proto_pack_bool(struct proto_enc *e, bool v);
void proto_pack_nil(struct proto_enc *e);
void proto_pack_map(struct proto_enc *e, uint32_t n);
void proto_pack_array(struct proto_enc *e, uint32_t n);
void proto_pack_bin(struct proto_enc *e, const void *p, size_t n);
/* Copies a decoded value (deeply). */
void proto_pack_object(struct proto_enc *e, const msgpack_object *o);

/* Whole messages, appended to e: {op:"response", seq_number, result:nil} and
 * {op:"response", seq_number, result:message, is_exception:true}. */
void proto_enc_response_nil(struct proto_enc *e, int64_t seq);
void proto_enc_response_error(struct proto_enc *e, int64_t seq, const char *message);

#endif
