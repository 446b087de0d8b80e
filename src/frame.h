/*
 * Framing: a 4-byte big-endian length, then one packed sotto.Frame.
 *
 * Decoding checks the length field against the caller's cap before reading
 * or allocating anything, and unpacks with a bounded allocator, so a peer
 * makes the decoder allocate only in proportion to the bytes it really sent
 * (see FRAME_ALLOC_FACTOR).  A decoded frame is owned by the caller and must
 * be released with frame_free() (never protobuf_c_message_free_unpacked()).
 *
 * Encoding appends to a libevent evbuffer with one reserve/commit, so every
 * frame queued for a connection in one loop pass leaves in one TLS write.
 * Frames built on the stack for encoding borrow their strings and bytes
 * (see proto_str and proto_bytes in proto.h); nothing is copied until packing.
 *
 * Nothing here keeps state between calls; each evbuffer and frame belongs to
 * one thread at a time.
 */
#ifndef SOTTO_FRAME_H
#define SOTTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "crypto/err.h"
#include "src/proto.h"

#define FRAME_HEADER_BYTES        4
#define FRAME_MAX_PREAUTH_DEFAULT 65536    /* cap before authentication */
#define FRAME_MAX_DEFAULT         1048576  /* cap after authentication */
#define FRAME_MAX_LIMIT           16777216 /* no frame is ever larger, either way */
/*
 * A Deliver is a few bytes longer than the Send that carried its envelope
 * (sender name and timestamp), so a client decodes pushes with a cap of the
 * server's max_frame plus this slack.
 */
#define FRAME_PUSH_SLACK 1024
/*
 * Unpacking a frame of n bytes may allocate at most FRAME_ALLOC_FACTOR * n +
 * FRAME_ALLOC_BASE bytes at once.  The base covers the legitimate lists
 * (protobuf-c spends about 100 bytes per repeated element, which can be 2
 * bytes on the wire); the factor covers envelopes, copied once.
 */
#define FRAME_ALLOC_FACTOR 4
#define FRAME_ALLOC_BASE   (1024 * 1024)

/* Initialise a stack frame for encoding, with request id id and no body. */
void frame_init(Sotto__Frame *f, uint64_t id);

/*
 * Decode one frame from the len bytes at data.  max is the cap on the
 * length field (at most FRAME_MAX_LIMIT).  Returns 0 with *out set and *used
 * the bytes consumed (header included); SOTTO_ERR_AGAIN if the bytes hold no
 * complete frame yet; SOTTO_ERR_RANGE if the length field exceeds max
 * (decided from the 4 header bytes alone); SOTTO_ERR_FORMAT if the frame does
 * not unpack within the allocation bound, or its body is unset or unknown.
 * On SOTTO_ERR_FORMAT *used covers the bad frame and *idp (if not NULL) is
 * the frame's id when the envelope itself unpacked, so the caller can answer
 * ERR_UNKNOWN_TYPE to that request; otherwise *idp is 0.
 */
int frame_decode(const uint8_t *data, size_t len, size_t max, Sotto__Frame **out, size_t *used,
        uint64_t *idp) SOTTO_WUR;

/*
 * Like frame_decode, reading from and draining in.  Incomplete frames stay
 * in the buffer (SOTTO_ERR_AGAIN); so does a frame whose length field is
 * too large (SOTTO_ERR_RANGE: close the connection).  A frame that fails
 * with SOTTO_ERR_FORMAT is drained.
 */
int frame_read(struct evbuffer *in, size_t max, Sotto__Frame **out, uint64_t *idp) SOTTO_WUR;

/*
 * The length field of the next frame in in: 0 with *len set, or
 * SOTTO_ERR_AGAIN if fewer than 4 bytes are buffered.
 */
int frame_peek_length(struct evbuffer *in, uint32_t *len) SOTTO_WUR;

/* Release a frame from frame_decode or frame_read; NULL is ignored. */
void frame_free(Sotto__Frame *f);

/*
 * A bump allocator for frames decoded, handled and freed one at a time:
 * unpacking into it costs no malloc per field.  The owner sets base and cap
 * and leaves used at 0; blocks that do not fit come from malloc as usual, and
 * the allocation bound applies either way.
 */
struct frame_arena {
	uint8_t *base;
	size_t cap, used;
	size_t spilled; /* blocks that did not fit and came from malloc */
};

/* frame_read, unpacking into arena (NULL: plain frame_read). */
int frame_read_arena(struct evbuffer *in, size_t max, struct frame_arena *arena, Sotto__Frame **out,
        uint64_t *idp) SOTTO_WUR;

/* Release a frame from frame_read_arena and empty the arena for the next one. */
void frame_free_arena(Sotto__Frame *f, struct frame_arena *arena);

/* The encoded size of f, header included. */
size_t frame_size(const Sotto__Frame *f);

/*
 * Encode f into a new malloc'd buffer (*out set to NULL first).
 * SOTTO_ERR_RANGE if it would exceed FRAME_MAX_LIMIT.
 */
int frame_encode(const Sotto__Frame *f, uint8_t **out, size_t *outlen) SOTTO_WUR;

/* Append f to out in one reserve/commit; SOTTO_ERR_RANGE or SOTTO_ERR_NOMEM. */
int frame_write(struct evbuffer *out, const Sotto__Frame *f) SOTTO_WUR;

/* Append Error{code, message, retry_after} answering request id (message may be NULL). */
int frame_write_error(struct evbuffer *out, uint64_t id, uint32_t code, const char *message,
        uint32_t retry_after) SOTTO_WUR;

/* Append Ok answering request id. */
int frame_write_ok(struct evbuffer *out, uint64_t id) SOTTO_WUR;

/* Append Closing{code, reason, retry_after}: as a push when id is 0, else answering Bye. */
int frame_write_closing(struct evbuffer *out, uint64_t id, uint32_t code, const char *reason,
        uint32_t retry_after) SOTTO_WUR;

/* The body's field name in sotto.proto ("send", "deliver_ack"), or "none" for logs. */
const char *frame_body_name(const Sotto__Frame *f);

#endif
