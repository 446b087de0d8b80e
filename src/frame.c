/* Length-prefixed protobuf frames; see frame.h. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/buf.h"
#include "src/frame.h"
#include "src/proto.h"

/*
 * Every block handed to protobuf-c carries its size in front, so frees can
 * be credited back to the bound during unpacking and frame_free() can use the
 * same free function afterwards without the bound.
 */
union frame_alloc_hdr {
	size_t size;
	max_align_t align;
};

/* bounded: 0 when freeing a frame already decoded, which no longer counts against a bound. */
struct frame_bound {
	size_t used;
	size_t cap;
	int bounded;
	struct frame_arena *arena; /* or NULL */
};

/* 1 if p was carved from the arena (and so is not freed on its own). */
static int
frame_in_arena(const struct frame_arena *a, const void *p)
{
	const uint8_t *q = p;

	return a != NULL && a->base != NULL && q >= a->base && q < a->base + a->cap;
}

/* Allocate for protobuf-c, failing once the frame's bound would be exceeded. */
static void *
frame_alloc(void *data, size_t size)
{
	struct frame_bound *fb = data;
	struct frame_arena *a = fb != NULL ? fb->arena : NULL;
	union frame_alloc_hdr *h;
	size_t total;

	if (size > SIZE_MAX - 2 * sizeof(*h))
		return NULL;
	total = sizeof(*h) + size;
	if (fb != NULL && fb->bounded) {
		if (total > fb->cap - fb->used)
			return NULL;
		fb->used += total;
	}
	/* Whole units of the header's size keep every block aligned for any type. */
	total = (total + sizeof(*h) - 1) / sizeof(*h) * sizeof(*h);
	if (a != NULL && a->base != NULL && total <= a->cap - a->used) {
		h = (union frame_alloc_hdr *)(void *)(a->base + a->used);
		a->used += total;
	} else if ((h = malloc(total)) == NULL) {
		if (fb != NULL && fb->bounded)
			fb->used -= sizeof(*h) + size;
		return NULL;
	} else if (a != NULL) {
		a->spilled++;
	}
	h->size = sizeof(*h) + size;
	return h + 1;
}

static void
frame_dealloc(void *data, void *p)
{
	struct frame_bound *fb = data;
	union frame_alloc_hdr *h;

	if (p == NULL)
		return;
	h = (union frame_alloc_hdr *)p - 1;
	if (fb != NULL && fb->bounded)
		fb->used -= h->size;
	if (!frame_in_arena(fb != NULL ? fb->arena : NULL, h))
		free(h);
}

/* Unpack one frame body of len bytes under the allocation bound, into arena if not NULL. */
static int
frame_unpack(const uint8_t *data, size_t len, struct frame_arena *arena, Sotto__Frame **out,
        uint64_t *idp)
{
	struct frame_bound fb;
	ProtobufCAllocator a;
	Sotto__Frame *f;
	size_t mark = arena != NULL ? arena->used : 0;

	*out = NULL;
	if (arena != NULL && mark == 0)
		arena->spilled = 0;
	fb.used = 0;
	fb.cap = len * FRAME_ALLOC_FACTOR + FRAME_ALLOC_BASE;
	fb.bounded = 1;
	fb.arena = arena;
	a.alloc = frame_alloc;
	a.free = frame_dealloc;
	a.allocator_data = &fb;
	if ((f = sotto__frame__unpack(&a, len, data)) == NULL) {
		/* protobuf-c freed what it had; take back the arena's share too. */
		if (arena != NULL)
			arena->used = mark;
		return SOTTO_ERR_FORMAT;
	}
	if (f->body_case == SOTTO__FRAME__BODY__NOT_SET) {
		if (idp != NULL)
			*idp = f->id;
		frame_free_arena(f, arena);
		if (arena != NULL)
			arena->used = mark;
		return SOTTO_ERR_FORMAT;
	}
	*out = f;
	return 0;
}

void
frame_init(Sotto__Frame *f, uint64_t id)
{
	sotto__frame__init(f);
	f->id = id;
}

static int
frame_decode_in(const uint8_t *data, size_t len, size_t max, struct frame_arena *arena,
        Sotto__Frame **out, size_t *used, uint64_t *idp)
{
	struct buf b;
	const uint8_t *body;
	size_t blen;
	int r;

	*out = NULL;
	*used = 0;
	if (idp != NULL)
		*idp = 0;
	if (max > FRAME_MAX_LIMIT)
		max = FRAME_MAX_LIMIT;
	buf_init_reader(&b, data, len);
	if ((r = buf_get_string_direct(&b, &body, &blen, max)) != 0)
		return r == SOTTO_ERR_SHORT ? SOTTO_ERR_AGAIN : r;
	*used = FRAME_HEADER_BYTES + blen;
	return frame_unpack(body, blen, arena, out, idp);
}

int
frame_decode(const uint8_t *data, size_t len, size_t max, Sotto__Frame **out, size_t *used,
        uint64_t *idp)
{
	return frame_decode_in(data, len, max, NULL, out, used, idp);
}

int
frame_peek_length(struct evbuffer *in, uint32_t *len)
{
	uint8_t hdr[FRAME_HEADER_BYTES];
	struct buf b;

	*len = 0;
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
		return SOTTO_ERR_AGAIN;
	buf_init_reader(&b, hdr, sizeof(hdr));
	return buf_get_u32(&b, len);
}

int
frame_read_arena(struct evbuffer *in, size_t max, struct frame_arena *arena, Sotto__Frame **out,
        uint64_t *idp)
{
	const uint8_t *p;
	uint32_t flen;
	size_t used = 0;
	int r;

	*out = NULL;
	if (idp != NULL)
		*idp = 0;
	if ((r = frame_peek_length(in, &flen)) != 0)
		return r;
	if (max > FRAME_MAX_LIMIT)
		max = FRAME_MAX_LIMIT;
	/* Refuse before pulling anything up: the length is the peer's claim. */
	if (flen > max)
		return SOTTO_ERR_RANGE;
	if (evbuffer_get_length(in) - FRAME_HEADER_BYTES < flen)
		return SOTTO_ERR_AGAIN;
	if ((p = evbuffer_pullup(in, (ev_ssize_t)(FRAME_HEADER_BYTES + (size_t)flen))) == NULL)
		return SOTTO_ERR_NOMEM;
	r = frame_decode_in(p, FRAME_HEADER_BYTES + (size_t)flen, max, arena, out, &used, idp);
	if (r == 0 || r == SOTTO_ERR_FORMAT)
		evbuffer_drain(in, used);
	return r;
}

int
frame_read(struct evbuffer *in, size_t max, Sotto__Frame **out, uint64_t *idp)
{
	return frame_read_arena(in, max, NULL, out, idp);
}

void
frame_free_arena(Sotto__Frame *f, struct frame_arena *arena)
{
	struct frame_bound fb;
	ProtobufCAllocator a;

	/* Wholly in the arena: emptying the arena frees it, with no walk. */
	if (f != NULL &&
	        !(arena != NULL && arena->spilled == 0 &&
	                frame_in_arena(arena, (const union frame_alloc_hdr *)(void *)f - 1))) {
		memset(&fb, 0, sizeof(fb));
		fb.arena = arena;
		a.alloc = frame_alloc;
		a.free = frame_dealloc;
		a.allocator_data = &fb;
		sotto__frame__free_unpacked(f, &a);
	}
	if (arena != NULL) {
		arena->used = 0;
		arena->spilled = 0;
	}
}

void
frame_free(Sotto__Frame *f)
{
	frame_free_arena(f, NULL);
}

size_t
frame_size(const Sotto__Frame *f)
{
	return FRAME_HEADER_BYTES + sotto__frame__get_packed_size(f);
}

/* Write the header and the packed frame into exactly total bytes at p. */
static int
frame_pack_into(const Sotto__Frame *f, uint8_t *p, size_t total)
{
	size_t n = total - FRAME_HEADER_BYTES;

	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	if (sotto__frame__pack(f, p + FRAME_HEADER_BYTES) != n)
		return SOTTO_ERR_INVALID;
	return 0;
}

int
frame_encode(const Sotto__Frame *f, uint8_t **out, size_t *outlen)
{
	uint8_t *p = NULL;
	size_t n;
	int r;

	*out = NULL;
	*outlen = 0;
	n = sotto__frame__get_packed_size(f);
	if (n > FRAME_MAX_LIMIT)
		return SOTTO_ERR_RANGE;
	if ((p = malloc(FRAME_HEADER_BYTES + n)) == NULL)
		return SOTTO_ERR_NOMEM;
	if ((r = frame_pack_into(f, p, FRAME_HEADER_BYTES + n)) != 0)
		goto out;
	*out = p;
	*outlen = FRAME_HEADER_BYTES + n;
	p = NULL;
out:
	free(p);
	return r;
}

int
frame_write(struct evbuffer *out, const Sotto__Frame *f)
{
	struct evbuffer_iovec v;
	size_t n, total;
	int r;

	n = sotto__frame__get_packed_size(f);
	if (n > FRAME_MAX_LIMIT)
		return SOTTO_ERR_RANGE;
	total = FRAME_HEADER_BYTES + n;
	/* One extent, so the frame is contiguous and written with one commit. */
	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) != 1 || v.iov_len < total)
		return SOTTO_ERR_NOMEM;
	if ((r = frame_pack_into(f, v.iov_base, total)) != 0)
		return r;
	v.iov_len = total;
	if (evbuffer_commit_space(out, &v, 1) != 0)
		return SOTTO_ERR_NOMEM;
	return 0;
}

int
frame_write_error(
        struct evbuffer *out, uint64_t id, uint32_t code, const char *message, uint32_t retry_after)
{
	Sotto__Frame f;
	Sotto__Error e;

	sotto__error__init(&e);
	e.code = code;
	e.message = proto_str(message != NULL ? message : "");
	e.retry_after = retry_after;
	frame_init(&f, id);
	f.body_case = SOTTO__FRAME__BODY_ERROR;
	f.error = &e;
	return frame_write(out, &f);
}

int
frame_write_ok(struct evbuffer *out, uint64_t id)
{
	Sotto__Frame f;
	Sotto__Ok ok;

	sotto__ok__init(&ok);
	frame_init(&f, id);
	f.body_case = SOTTO__FRAME__BODY_OK;
	f.ok = &ok;
	return frame_write(out, &f);
}

int
frame_write_closing(
        struct evbuffer *out, uint64_t id, uint32_t code, const char *reason, uint32_t retry_after)
{
	Sotto__Frame f;
	Sotto__Closing c;

	sotto__closing__init(&c);
	c.code = code;
	c.reason = proto_str(reason != NULL ? reason : "");
	c.retry_after = retry_after;
	frame_init(&f, id);
	f.body_case = SOTTO__FRAME__BODY_CLOSING;
	f.closing = &c;
	return frame_write(out, &f);
}

const char *
frame_body_name(const Sotto__Frame *f)
{
	const ProtobufCFieldDescriptor *fd;

	if (f == NULL || f->body_case == SOTTO__FRAME__BODY__NOT_SET)
		return "none";
	fd = protobuf_c_message_descriptor_get_field(
	        &sotto__frame__descriptor, (unsigned)f->body_case);
	return fd == NULL ? "unknown" : fd->name;
}
