/* Unit tests for src/frame.c and src/proto.c. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/buffer.h>

#include "crypto/buf.h"
#include "src/frame.h"
#include "src/proto.h"

#ifndef Test
/* cppcheck does not read criterion.h: let it analyse each test as a plain function. */
#define TestSuite(...)         struct test_suite_unused
#define Test(suite, name, ...) void test_##suite##_##name(void)
#endif

static const uint8_t test_msg_id[PROTO_MSG_ID_BYTES] = {
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* A Send frame with id 42 to "bob" carrying sealed (borrowed). */
static void
test_send_frame(Sotto__Frame *f, Sotto__Send *s, const uint8_t *sealed, size_t len)
{
	sotto__send__init(s);
	s->msg_id = proto_bytes(test_msg_id, sizeof(test_msg_id));
	s->to = proto_str("bob");
	s->sealed = proto_bytes(sealed, len);
	frame_init(f, 42);
	f->body_case = SOTTO__FRAME__BODY_SEND;
	f->send = s;
}

static void
test_check_send(const Sotto__Frame *f, const uint8_t *sealed, size_t len)
{
	cr_assert_eq(f->id, 42);
	cr_assert_eq(f->body_case, SOTTO__FRAME__BODY_SEND);
	cr_assert_not_null(f->send);
	cr_assert_eq(f->send->msg_id.len, sizeof(test_msg_id));
	cr_assert(memcmp(f->send->msg_id.data, test_msg_id, sizeof(test_msg_id)) == 0);
	cr_assert_str_eq(f->send->to, "bob");
	cr_assert_eq(f->send->sealed.len, len);
	if (len > 0)
		cr_assert(memcmp(f->send->sealed.data, sealed, len) == 0);
}

/* Protobuf varint, for hand-made frames. */
static void
test_put_varint(struct buf *b, uint64_t v)
{
	while (v >= 0x80) {
		cr_assert_eq(buf_put_u8(b, (uint8_t)(v | 0x80)), 0);
		v >>= 7;
	}
	cr_assert_eq(buf_put_u8(b, (uint8_t)v), 0);
}

/* Wrap a hand-made Frame body (b's contents) in a length header. */
static void
test_wrap(struct buf *out, const struct buf *body)
{
	buf_init(out, 0);
	cr_assert_eq(buf_put_string(out, buf_ptr(body), buf_len(body)), 0);
}

Test(frame, roundtrip_encode_decode)
{
	uint8_t sealed[300], *enc = NULL;
	size_t enclen = 0, used = 0;
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;
	uint64_t id = 99;
	size_t i;

	for (i = 0; i < sizeof(sealed); i++)
		sealed[i] = (uint8_t)(i * 7);
	test_send_frame(&f, &s, sealed, sizeof(sealed));
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	cr_assert_eq(enclen, frame_size(&f));
	cr_assert_eq(((size_t)enc[0] << 24 | (size_t)enc[1] << 16 | (size_t)enc[2] << 8 | enc[3]),
	        enclen - FRAME_HEADER_BYTES);
	cr_assert_eq(frame_decode(enc, enclen, FRAME_MAX_DEFAULT, &d, &used, &id), 0);
	cr_assert_eq(used, enclen);
	cr_assert_eq(id, 0);
	test_check_send(d, sealed, sizeof(sealed));
	cr_assert_str_eq(frame_body_name(d), "send");
	frame_free(d);
	free(enc);
}

Test(frame, roundtrip_evbuffer)
{
	struct evbuffer *eb = evbuffer_new();
	uint8_t sealed[5000];
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;

	memset(sealed, 0xab, sizeof(sealed));
	test_send_frame(&f, &s, sealed, sizeof(sealed));
	cr_assert_eq(frame_write(eb, &f), 0);
	cr_assert_eq(evbuffer_get_length(eb), frame_size(&f));
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), 0);
	test_check_send(d, sealed, sizeof(sealed));
	cr_assert_eq(evbuffer_get_length(eb), 0);
	frame_free(d);
	evbuffer_free(eb);
}

Test(frame, empty_body_messages_roundtrip)
{
	struct evbuffer *eb = evbuffer_new();
	Sotto__Frame *d = NULL;

	cr_assert_eq(frame_write_ok(eb, 7), 0);
	cr_assert_eq(frame_write_error(eb, 8, SOTTO__ERROR_CODE__ERR_LOCKED_OUT, "locked", 55), 0);
	cr_assert_eq(frame_write_closing(eb, 0, SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT, NULL, 0), 0);

	cr_assert_eq(frame_read(eb, FRAME_MAX_PREAUTH_DEFAULT, &d, NULL), 0);
	cr_assert_eq(d->id, 7);
	cr_assert_eq(d->body_case, SOTTO__FRAME__BODY_OK);
	frame_free(d);

	cr_assert_eq(frame_read(eb, FRAME_MAX_PREAUTH_DEFAULT, &d, NULL), 0);
	cr_assert_eq(d->id, 8);
	cr_assert_eq(d->body_case, SOTTO__FRAME__BODY_ERROR);
	cr_assert_eq(d->error->code, SOTTO__ERROR_CODE__ERR_LOCKED_OUT);
	cr_assert_str_eq(d->error->message, "locked");
	cr_assert_eq(d->error->retry_after, 55);
	frame_free(d);

	cr_assert_eq(frame_read(eb, FRAME_MAX_PREAUTH_DEFAULT, &d, NULL), 0);
	cr_assert_eq(d->id, 0);
	cr_assert_eq(d->body_case, SOTTO__FRAME__BODY_CLOSING);
	cr_assert_eq(d->closing->code, SOTTO__ERROR_CODE__ERR_IDLE_TIMEOUT);
	cr_assert_str_eq(d->closing->reason, "");
	cr_assert_str_eq(frame_body_name(d), "closing");
	frame_free(d);

	cr_assert_eq(frame_read(eb, FRAME_MAX_PREAUTH_DEFAULT, &d, NULL), SOTTO_ERR_AGAIN);
	cr_assert_null(d);
	evbuffer_free(eb);
}

Test(frame, oversized_length_rejected_from_header_alone)
{
	const uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
	const uint8_t just_over[4] = {0x00, 0x01, 0x00, 0x01}; /* 65537 */
	struct evbuffer *eb = evbuffer_new();
	Sotto__Frame *d = (Sotto__Frame *)1;
	size_t used = 1;
	uint32_t len;

	/* Only the 4 header bytes exist: the verdict cannot depend on the body. */
	cr_assert_eq(frame_decode(huge, sizeof(huge), FRAME_MAX_DEFAULT, &d, &used, NULL),
	        SOTTO_ERR_RANGE);
	cr_assert_null(d);
	cr_assert_eq(used, 0);
	cr_assert_eq(frame_decode(just_over, sizeof(just_over), FRAME_MAX_PREAUTH_DEFAULT, &d,
	                     &used, NULL),
	        SOTTO_ERR_RANGE);
	/* The same length is fine after authentication (the body is missing). */
	cr_assert_eq(frame_decode(just_over, sizeof(just_over), FRAME_MAX_DEFAULT, &d, &used, NULL),
	        SOTTO_ERR_AGAIN);
	/* A cap above the hard limit is clamped to it. */
	cr_assert_eq(frame_decode(huge, sizeof(huge), SIZE_MAX, &d, &used, NULL), SOTTO_ERR_RANGE);

	cr_assert_eq(evbuffer_add(eb, huge, sizeof(huge)), 0);
	cr_assert_eq(frame_peek_length(eb, &len), 0);
	cr_assert_eq(len, 0x7fffffff);
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), SOTTO_ERR_RANGE);
	cr_assert_null(d);
	/* Nothing drained, nothing pulled up: the connection is to be closed. */
	cr_assert_eq(evbuffer_get_length(eb), sizeof(huge));
	evbuffer_free(eb);
}

Test(frame, exact_cap_accepted)
{
	uint8_t *enc = NULL, *sealed;
	size_t enclen = 0, used = 0;
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;
	size_t body;

	sealed = calloc(1, FRAME_MAX_PREAUTH_DEFAULT);
	cr_assert_not_null(sealed);
	/* Find the sealed length that makes the body exactly the cap. */
	test_send_frame(&f, &s, sealed, FRAME_MAX_PREAUTH_DEFAULT - 64);
	body = frame_size(&f) - FRAME_HEADER_BYTES;
	s.sealed.len += FRAME_MAX_PREAUTH_DEFAULT - body;
	cr_assert_eq(frame_size(&f) - FRAME_HEADER_BYTES, FRAME_MAX_PREAUTH_DEFAULT);
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	cr_assert_eq(frame_decode(enc, enclen, FRAME_MAX_PREAUTH_DEFAULT, &d, &used, NULL), 0);
	frame_free(d);
	cr_assert_eq(frame_decode(enc, enclen, FRAME_MAX_PREAUTH_DEFAULT - 1, &d, &used, NULL),
	        SOTTO_ERR_RANGE);
	free(enc);
	free(sealed);
}

Test(frame, truncated_is_again)
{
	struct evbuffer *eb = evbuffer_new();
	uint8_t sealed[100], *enc = NULL;
	size_t enclen = 0, used, i;
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;

	memset(sealed, 1, sizeof(sealed));
	test_send_frame(&f, &s, sealed, sizeof(sealed));
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	for (i = 0; i < enclen; i++) {
		cr_assert_eq(frame_decode(enc, i, FRAME_MAX_DEFAULT, &d, &used, NULL),
		        SOTTO_ERR_AGAIN, "prefix %zu", i);
		cr_assert_null(d);
	}
	/* Byte by byte through an evbuffer: AGAIN until the last byte, nothing drained. */
	for (i = 0; i < enclen - 1; i++) {
		cr_assert_eq(evbuffer_add(eb, enc + i, 1), 0);
		cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), SOTTO_ERR_AGAIN);
		cr_assert_eq(evbuffer_get_length(eb), i + 1);
	}
	cr_assert_eq(evbuffer_add(eb, enc + enclen - 1, 1), 0);
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), 0);
	test_check_send(d, sealed, sizeof(sealed));
	frame_free(d);
	free(enc);
	evbuffer_free(eb);
}

Test(frame, garbage_is_format)
{
	const uint8_t garbage[] = {
	        0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'n', 'e', 'x', 't'};
	/* Field 40 (send) claims 100 bytes but the frame has 2. */
	const uint8_t short_sub[] = {0, 0, 0, 4, 0xc2, 0x02, 100, 0};
	/* Field 1 (id) with the wrong wire type (length-delimited). */
	const uint8_t wrong_type[] = {0, 0, 0, 3, 0x0a, 1, 0};
	struct evbuffer *eb = evbuffer_new();
	Sotto__Frame *d = NULL;
	uint64_t id = 5;
	size_t used = 0;

	cr_assert_eq(frame_decode(garbage, sizeof(garbage), FRAME_MAX_DEFAULT, &d, &used, &id),
	        SOTTO_ERR_FORMAT);
	cr_assert_null(d);
	cr_assert_eq(used, 10);
	cr_assert_eq(id, 0);
	cr_assert_eq(frame_decode(short_sub, sizeof(short_sub), FRAME_MAX_DEFAULT, &d, &used, &id),
	        SOTTO_ERR_FORMAT);
	cr_assert_eq(
	        frame_decode(wrong_type, sizeof(wrong_type), FRAME_MAX_DEFAULT, &d, &used, &id),
	        SOTTO_ERR_FORMAT);

	/* A bad frame is drained so that the caller sees what follows. */
	cr_assert_eq(evbuffer_add(eb, garbage, sizeof(garbage)), 0);
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, &id), SOTTO_ERR_FORMAT);
	cr_assert_eq(evbuffer_get_length(eb), 4);
	evbuffer_free(eb);
}

Test(frame, empty_frame_is_format)
{
	const uint8_t empty[] = {0, 0, 0, 0};
	Sotto__Frame *d = NULL;
	uint64_t id = 5;
	size_t used = 0;

	cr_assert_eq(frame_decode(empty, sizeof(empty), FRAME_MAX_DEFAULT, &d, &used, &id),
	        SOTTO_ERR_FORMAT);
	cr_assert_eq(used, 4);
	cr_assert_eq(id, 0);
}

Test(frame, unset_body_is_format_with_id)
{
	Sotto__Frame f, *d = NULL;
	uint8_t *enc = NULL;
	size_t enclen = 0, used = 0;
	uint64_t id = 0;

	frame_init(&f, 1234);
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	cr_assert_eq(
	        frame_decode(enc, enclen, FRAME_MAX_DEFAULT, &d, &used, &id), SOTTO_ERR_FORMAT);
	cr_assert_null(d);
	cr_assert_eq(id, 1234);
	cr_assert_eq(used, enclen);
	free(enc);
}

Test(frame, unknown_body_is_format_with_id)
{
	struct buf body, framed;
	Sotto__Frame *d = NULL;
	uint64_t id = 0;
	size_t used = 0;

	/* id = 77, then field 999 (a future message type) holding 3 bytes. */
	buf_init(&body, 0);
	test_put_varint(&body, 1 << 3);
	test_put_varint(&body, 77);
	test_put_varint(&body, (999 << 3) | 2);
	test_put_varint(&body, 3);
	cr_assert_eq(buf_put(&body, "abc", 3), 0);
	test_wrap(&framed, &body);
	cr_assert_eq(
	        frame_decode(buf_ptr(&framed), buf_len(&framed), FRAME_MAX_DEFAULT, &d, &used, &id),
	        SOTTO_ERR_FORMAT);
	cr_assert_null(d);
	cr_assert_eq(id, 77);
	cr_assert_eq(used, buf_len(&framed));
	buf_free(&body);
	buf_free(&framed);
}

Test(frame, two_bodies_last_wins)
{
	struct buf body, framed;
	Sotto__Frame *d = NULL;
	size_t used = 0;

	/* ping (14) then ok (13), both empty: the oneof keeps the last. */
	buf_init(&body, 0);
	test_put_varint(&body, (14 << 3) | 2);
	test_put_varint(&body, 0);
	test_put_varint(&body, (13 << 3) | 2);
	test_put_varint(&body, 0);
	test_wrap(&framed, &body);
	cr_assert_eq(frame_decode(buf_ptr(&framed), buf_len(&framed), FRAME_MAX_DEFAULT, &d, &used,
	                     NULL),
	        0);
	cr_assert_eq(d->body_case, SOTTO__FRAME__BODY_OK);
	frame_free(d);
	buf_free(&body);
	buf_free(&framed);
}

Test(frame, multiple_frames_in_one_buffer)
{
	struct evbuffer *eb = evbuffer_new();
	uint8_t sealed[64];
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;
	uint64_t i;

	memset(sealed, 3, sizeof(sealed));
	test_send_frame(&f, &s, sealed, sizeof(sealed));
	for (i = 1; i <= 5; i++) {
		f.id = i;
		cr_assert_eq(frame_write(eb, &f), 0);
	}
	cr_assert_eq(frame_write_ok(eb, 6), 0);
	/* Half of a seventh frame. */
	cr_assert_eq(evbuffer_add(eb, "\0\0\0\x10\x08", 5), 0);
	for (i = 1; i <= 5; i++) {
		cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), 0);
		cr_assert_eq(d->id, i);
		cr_assert_eq(d->body_case, SOTTO__FRAME__BODY_SEND);
		frame_free(d);
	}
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), 0);
	cr_assert_eq(d->id, 6);
	frame_free(d);
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), SOTTO_ERR_AGAIN);
	cr_assert_eq(evbuffer_get_length(eb), 5);
	evbuffer_free(eb);
}

Test(frame, expansion_bomb_refused)
{
	struct buf inner, body, framed;
	Sotto__Frame *d = NULL;
	size_t used = 0, n;

	/*
	 * UploadPrekeys with ~500,000 empty one-time prekeys: 2 bytes each on
	 * the wire, far more once unpacked.  The bound refuses it.
	 */
	buf_init(&inner, FRAME_MAX_DEFAULT);
	for (n = 0; n < (FRAME_MAX_DEFAULT - 16) / 2; n++) {
		test_put_varint(&inner, (2 << 3) | 2);
		test_put_varint(&inner, 0);
	}
	buf_init(&body, FRAME_MAX_DEFAULT);
	test_put_varint(&body, (24 << 3) | 2);
	test_put_varint(&body, buf_len(&inner));
	cr_assert_eq(buf_put(&body, buf_ptr(&inner), buf_len(&inner)), 0);
	test_wrap(&framed, &body);
	cr_assert_leq(buf_len(&framed), FRAME_MAX_DEFAULT + FRAME_HEADER_BYTES);
	cr_assert_eq(frame_decode(buf_ptr(&framed), buf_len(&framed), FRAME_MAX_DEFAULT, &d, &used,
	                     NULL),
	        SOTTO_ERR_FORMAT);
	cr_assert_null(d);
	buf_free(&inner);
	buf_free(&body);
	buf_free(&framed);
}

Test(frame, largest_legitimate_lists_fit)
{
	Sotto__OneTimePrekey otk[PROTO_MAX_OTKS], *otkp[PROTO_MAX_OTKS];
	Sotto__Recipient rc[PROTO_MAX_RECIPIENTS], *rcp[PROTO_MAX_RECIPIENTS];
	ProtobufCBinaryData ids[PROTO_MAX_ACK_IDS];
	Sotto__UploadPrekeys up;
	Sotto__SendMulti sm;
	Sotto__DeliverAck da;
	Sotto__Frame f, *d = NULL;
	uint8_t key[PROTO_PREKEY_BYTES] = {0}, sealed[900] = {0}, *enc = NULL;
	size_t enclen = 0, used = 0, i;

	sotto__upload_prekeys__init(&up);
	for (i = 0; i < PROTO_MAX_OTKS; i++) {
		sotto__one_time_prekey__init(&otk[i]);
		otk[i].id = (uint32_t)i + 1;
		otk[i].public_key = proto_bytes(key, sizeof(key));
		otkp[i] = &otk[i];
	}
	up.n_otks = PROTO_MAX_OTKS;
	up.otks = otkp;
	frame_init(&f, 1);
	f.body_case = SOTTO__FRAME__BODY_UPLOAD_PREKEYS;
	f.upload_prekeys = &up;
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	cr_assert_eq(frame_decode(enc, enclen, FRAME_MAX_PREAUTH_DEFAULT, &d, &used, NULL), 0);
	cr_assert_eq(d->upload_prekeys->n_otks, PROTO_MAX_OTKS);
	cr_assert_eq(d->upload_prekeys->otks[PROTO_MAX_OTKS - 1]->id, PROTO_MAX_OTKS);
	frame_free(d);
	free(enc);

	/* One-letter names: the most elements per wire byte a client can need. */
	sotto__send_multi__init(&sm);
	sm.msg_id = proto_bytes(test_msg_id, sizeof(test_msg_id));
	for (i = 0; i < PROTO_MAX_RECIPIENTS; i++) {
		sotto__recipient__init(&rc[i]);
		rc[i].to = proto_str("a");
		rc[i].sealed = proto_bytes(sealed, i % 2 ? sizeof(sealed) : 0);
		rcp[i] = &rc[i];
	}
	sm.n_recipients = PROTO_MAX_RECIPIENTS;
	sm.recipients = rcp;
	f.body_case = SOTTO__FRAME__BODY_SEND_MULTI;
	f.send_multi = &sm;
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	cr_assert_eq(frame_decode(enc, enclen, FRAME_MAX_DEFAULT, &d, &used, NULL), 0);
	cr_assert_eq(d->send_multi->n_recipients, PROTO_MAX_RECIPIENTS);
	frame_free(d);
	free(enc);

	sotto__deliver_ack__init(&da);
	for (i = 0; i < PROTO_MAX_ACK_IDS; i++)
		ids[i] = proto_bytes(test_msg_id, sizeof(test_msg_id));
	da.n_msg_ids = PROTO_MAX_ACK_IDS;
	da.msg_ids = ids;
	f.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	f.deliver_ack = &da;
	cr_assert_eq(frame_encode(&f, &enc, &enclen), 0);
	cr_assert_eq(frame_decode(enc, enclen, FRAME_MAX_DEFAULT, &d, &used, NULL), 0);
	cr_assert_eq(d->deliver_ack->n_msg_ids, PROTO_MAX_ACK_IDS);
	frame_free(d);
	free(enc);
}

Test(frame, largest_envelope_fits)
{
	struct evbuffer *eb = evbuffer_new();
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;
	uint8_t *sealed;
	size_t len = FRAME_MAX_DEFAULT - 64;

	sealed = malloc(len);
	cr_assert_not_null(sealed);
	memset(sealed, 0x5a, len);
	test_send_frame(&f, &s, sealed, len);
	cr_assert_eq(frame_write(eb, &f), 0);
	cr_assert_eq(frame_read(eb, FRAME_MAX_DEFAULT, &d, NULL), 0);
	test_check_send(d, sealed, len);
	frame_free(d);
	free(sealed);
	evbuffer_free(eb);
}

/* 1 if p lies in the arena's buffer. */
static int
test_in_arena(const struct frame_arena *a, const void *p)
{
	const uint8_t *q = p;

	return q >= a->base && q < a->base + a->cap;
}

Test(frame, arena_decode_spill_and_reset)
{
	static uint8_t space[4096];
	struct frame_arena a = {space, sizeof(space), 0, 0};
	struct evbuffer *eb = evbuffer_new();
	uint8_t sealed[6000];
	Sotto__Frame f, *d = NULL;
	Sotto__Send s;

	cr_assert_not_null(eb);
	memset(sealed, 0x5a, sizeof(sealed));
	/* Small: every block from the arena. */
	test_send_frame(&f, &s, sealed, 100);
	cr_assert_eq(frame_write(eb, &f), 0);
	cr_assert_eq(frame_read_arena(eb, FRAME_MAX_DEFAULT, &a, &d, NULL), 0);
	test_check_send(d, sealed, 100);
	cr_assert(test_in_arena(&a, d) && test_in_arena(&a, d->send->sealed.data));
	cr_assert_gt(a.used, 100);
	cr_assert_eq(a.spilled, 0);
	frame_free_arena(d, &a);
	cr_assert_eq(a.used, 0, "freeing empties the arena");
	/* Larger than the arena: the envelope spills to malloc, the rest stays. */
	test_send_frame(&f, &s, sealed, sizeof(sealed));
	cr_assert_eq(frame_write(eb, &f), 0);
	cr_assert_eq(frame_read_arena(eb, FRAME_MAX_DEFAULT, &a, &d, NULL), 0);
	test_check_send(d, sealed, sizeof(sealed));
	cr_assert(test_in_arena(&a, d));
	cr_assert_not(test_in_arena(&a, d->send->sealed.data));
	cr_assert_eq(a.spilled, 1, "one block from malloc, which the free must walk to");
	frame_free_arena(d, &a);
	cr_assert_eq(a.used, 0);
	cr_assert_eq(a.spilled, 0);
	evbuffer_free(eb);
}

Test(frame, arena_bad_frames_leave_it_empty)
{
	static uint8_t space[1 << 16];
	struct frame_arena a = {space, sizeof(space), 0, 0};
	struct evbuffer *eb = evbuffer_new();
	struct buf body, framed;
	Sotto__Frame *d = NULL;
	uint64_t id = 0;

	cr_assert_not_null(eb);
	/* A frame with an id and no body: decoded, then refused. */
	buf_init(&body, 64);
	test_put_varint(&body, (1 << 3) | 0);
	test_put_varint(&body, 7);
	test_wrap(&framed, &body);
	cr_assert_eq(evbuffer_add(eb, buf_ptr(&framed), buf_len(&framed)), 0);
	cr_assert_eq(frame_read_arena(eb, FRAME_MAX_DEFAULT, &a, &d, &id), SOTTO_ERR_FORMAT);
	cr_assert_eq(id, 7);
	cr_assert_eq(a.used, 0);
	/* Garbage that protobuf-c gives up on half way. */
	buf_free(&framed);
	cr_assert_eq(evbuffer_add(eb, "\0\0\0\x05\x0a\xff\xff\xff\x0f", 9), 0);
	cr_assert_eq(frame_read_arena(eb, FRAME_MAX_DEFAULT, &a, &d, &id), SOTTO_ERR_FORMAT);
	cr_assert_null(d);
	cr_assert_eq(a.used, 0);
	buf_free(&body);
	evbuffer_free(eb);
}

/* The allocation bound holds with an arena too: it is not a way around it. */
Test(frame, arena_keeps_the_bound)
{
	static uint8_t space[1 << 20];
	struct frame_arena a = {space, sizeof(space), 0, 0};
	struct evbuffer *eb = evbuffer_new();
	struct buf inner, body, framed;
	Sotto__Frame *d = NULL;
	size_t n;

	cr_assert_not_null(eb);
	buf_init(&inner, FRAME_MAX_DEFAULT);
	for (n = 0; n < (FRAME_MAX_DEFAULT - 16) / 2; n++) {
		test_put_varint(&inner, (2 << 3) | 2);
		test_put_varint(&inner, 0);
	}
	buf_init(&body, FRAME_MAX_DEFAULT);
	test_put_varint(&body, (24 << 3) | 2);
	test_put_varint(&body, buf_len(&inner));
	cr_assert_eq(buf_put(&body, buf_ptr(&inner), buf_len(&inner)), 0);
	test_wrap(&framed, &body);
	cr_assert_eq(evbuffer_add(eb, buf_ptr(&framed), buf_len(&framed)), 0);
	cr_assert_eq(frame_read_arena(eb, FRAME_MAX_DEFAULT, &a, &d, NULL), SOTTO_ERR_FORMAT);
	cr_assert_null(d);
	cr_assert_eq(a.used, 0);
	buf_free(&inner);
	buf_free(&body);
	buf_free(&framed);
	evbuffer_free(eb);
}

Test(frame, body_names)
{
	Sotto__Frame f;
	Sotto__DeliverAck da;

	frame_init(&f, 0);
	cr_assert_str_eq(frame_body_name(&f), "none");
	cr_assert_str_eq(frame_body_name(NULL), "none");
	sotto__deliver_ack__init(&da);
	f.body_case = SOTTO__FRAME__BODY_DELIVER_ACK;
	f.deliver_ack = &da;
	cr_assert_str_eq(frame_body_name(&f), "deliver_ack");
}

Test(proto, error_strings)
{
	uint32_t c;

	for (c = 0; c <= SOTTO__ERROR_CODE__ERR_REPLACED; c++) {
		const char *s = proto_error_string(c);

		cr_assert_not_null(s);
		cr_assert(strlen(s) > 5, "code %u", c);
		cr_assert(strcmp(s, proto_error_string(1000)) != 0, "code %u has no sentence", c);
		cr_assert(strncmp(proto_error_name(c), "ERR_", 4) == 0);
		cr_assert(strcmp(proto_error_name(c), "ERR_UNKNOWN") != 0, "code %u", c);
	}
	cr_assert_str_eq(proto_error_name(SOTTO__ERROR_CODE__ERR_LOCKED_OUT), "ERR_LOCKED_OUT");
	cr_assert_str_eq(proto_error_string(SOTTO__ERROR_CODE__ERR_USER_EXISTS),
	        "that username is already taken");
	cr_assert_str_eq(proto_error_name(1000), "ERR_UNKNOWN");
	cr_assert_str_eq(proto_error_name(UINT32_MAX), "ERR_UNKNOWN");
	cr_assert_not_null(proto_error_string(UINT32_MAX));
}

Test(proto, usernames)
{
	char out[PROTO_USERNAME_MAX + 1];

	cr_assert(proto_username_valid("a"));
	cr_assert(proto_username_valid("bob.smith-2_x"));
	cr_assert(proto_username_valid("0123456789abcdef0123456789abcdef"));
	cr_assert(!proto_username_valid("0123456789abcdef0123456789abcdefg"));
	cr_assert(!proto_username_valid(""));
	cr_assert(!proto_username_valid(NULL));
	cr_assert(!proto_username_valid(".bob"));
	cr_assert(!proto_username_valid("-bob"));
	cr_assert(!proto_username_valid("bob smith"));
	cr_assert(!proto_username_valid("bob/x"));
	cr_assert(!proto_username_valid("b\xc3\xb6b"));
	cr_assert_eq(proto_username_normalize(out, "Bob.Smith"), 0);
	cr_assert_str_eq(out, "bob.smith");
	cr_assert_eq(proto_username_normalize(out, "ALICE_9"), 0);
	cr_assert_str_eq(out, "alice_9");
	cr_assert_eq(proto_username_normalize(out, "no way"), SOTTO_ERR_FORMAT);
	cr_assert_str_eq(out, "");
}
