/*
 * RFC 6455 framing of the client's (masked) binary messages, for the
 * messages kiln-worker builds in place (an upload's blocks): lws would mask
 * them a byte at a time, which was most of the worker's CPU in an upload.
 * Pure functions; conn.c picks the masking keys and queues the frames.
 */
#ifndef KILN_WORKER_WSFRAME_H
#define KILN_WORKER_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

/* The longest client frame header: 2 + 8 (64-bit length) + 4 (masking key). */
#define WSFRAME_MAX_HEADER 14

/* Frames of at least this many payload bytes (an upload's blocks) go with
 * an all-zero masking key, so that neither side passes over the payload to
 * (un)mask it.  RFC 6455 5.3 leaves the key's choice to the client; its
 * unpredictability guards browsers' connections through caching proxies,
 * not a worker's to its master.  Smaller frames keep random keys. */
#define WSFRAME_ZERO_KEY_MIN (64u << 10)

/* The header's length for a masked frame of len payload bytes (the
 * shortest length form, as RFC 6455 5.2 requires): 6, 8 or 14. */
size_t wsframe_header_len(uint64_t len);

/* Writes the header of a final, masked binary frame of len payload bytes
 * with masking key key[0..4) into out (wsframe_header_len(len) bytes);
 * returns that length. */
size_t wsframe_header(unsigned char *out, uint64_t len, const unsigned char key[4]);

/* XORs p[0..len) with the key as RFC 6455 5.3 says (byte i with key[i % 4]),
 * eight bytes at a time; nothing to do for an all-zero key. */
void wsframe_mask(unsigned char *p, size_t len, const unsigned char key[4]);

#endif
