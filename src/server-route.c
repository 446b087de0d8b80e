/*
 * Routing sealed envelopes: Send, SendMulti, DeliverAck, live pushes and the
 * queue drain.
 *
 * An envelope first lives in memory as a struct pending.  One pushed to its
 * online recipient waits on server.inflight for the recipient's DeliverAck,
 * for up to live_wait_ms: acknowledged in that time, it never touches the
 * disk.  Any other, and one that waited that long, is written to the
 * recipient's queue at the next commit (server.pending).  The sender's Ack
 * waits for whichever comes first, so an Ack always means "the recipient has
 * it, or it is durably queued".  A resend that arrives while the first copy is
 * in memory is answered together with it.
 *
 * A connection is "live" once its queue is drained: new envelopes are pushed
 * as they arrive.  When its output passes the high-water mark it stops being
 * live, envelopes stay queued, and the drain resumes from the last pushed
 * queue position when the output has emptied to half.  So a slow reader costs
 * the server at most its high-water mark of memory.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/util.h"
#include "src/log.h"
#include "src/server.h"

#define STORED_MIN_KEYS 65536 /* the store filter's smallest size */

#define PIDX_MIN_BUCKETS 1024

/* Keyed by the user's record, which lives as long as the server: no names to hash. */
static uint64_t
pidx_hash(const struct pending_index *ix, const struct srv_user *r,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES])
{
	uint8_t in[PROTO_MSG_ID_BYTES + sizeof(uintptr_t)], out[crypto_shorthash_BYTES];
	uintptr_t u = (uintptr_t)r;
	uint64_t h;

	memcpy(in, msg_id, PROTO_MSG_ID_BYTES);
	memcpy(in + PROTO_MSG_ID_BYTES, &u, sizeof(u));
	crypto_shorthash(out, in, sizeof(in), ix->sipkey);
	memcpy(&h, out, sizeof(h));
	return h;
}

static int
pidx_init(struct pending_index *ix)
{
	if ((ix->bucket = calloc(PIDX_MIN_BUCKETS, sizeof(*ix->bucket))) == NULL)
		return SOTTO_ERR_NOMEM;
	ix->nbuckets = PIDX_MIN_BUCKETS;
	ix->count = 0;
	crypto_shorthash_keygen(ix->sipkey);
	return 0;
}

static void
pidx_free(struct pending_index *ix)
{
	free(ix->bucket);
	ix->bucket = NULL;
	ix->nbuckets = ix->count = 0;
}

static struct pending *
pidx_get(const struct pending_index *ix, const struct srv_user *r,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES], uint64_t h)
{
	struct pending *p;

	for (p = ix->bucket[h & (ix->nbuckets - 1)]; p != NULL; p = p->idx_next) {
		if (p->idx_hash == h && p->recipient == r &&
		        memcmp(p->msg_id, msg_id, PROTO_MSG_ID_BYTES) == 0)
			return p;
	}
	return NULL;
}

/* Past one envelope per bucket, twice the buckets; a failed grow keeps chains longer. */
static void
pidx_grow(struct pending_index *ix)
{
	size_t n = ix->nbuckets * 2, i;
	struct pending **b, *p, *next;

	if (n > SIZE_MAX / sizeof(*b) || (b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (i = 0; i < ix->nbuckets; i++) {
		for (p = ix->bucket[i]; p != NULL; p = next) {
			next = p->idx_next;
			p->idx_next = b[p->idx_hash & (n - 1)];
			b[p->idx_hash & (n - 1)] = p;
		}
	}
	free(ix->bucket);
	ix->bucket = b;
	ix->nbuckets = n;
}

/* Index p under p->recipient, p->msg_id and the hash h of both. */
static void
pidx_put(struct pending_index *ix, struct pending *p, uint64_t h)
{
	struct pending **head;

	if (ix->count >= ix->nbuckets)
		pidx_grow(ix);
	head = &ix->bucket[h & (ix->nbuckets - 1)];
	p->idx_hash = h;
	p->idx_next = *head;
	*head = p;
	p->indexed = 1;
	ix->count++;
}

static void
pidx_del(struct pending_index *ix, struct pending *p)
{
	struct pending **pp = &ix->bucket[p->idx_hash & (ix->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->idx_next) {
		if (*pp == p) {
			*pp = p->idx_next;
			p->idx_next = NULL;
			p->indexed = 0;
			ix->count--;
			return;
		}
	}
}

static void
route_fp(struct server *srv, uint8_t fp[IDSET_FP_BYTES], const char *recipient, const char *sender,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES])
{
	idset_fingerprint(fp, srv->fp_key, recipient, sender, msg_id, PROTO_MSG_ID_BYTES);
}

/* Remember an acknowledged envelope, forgetting the oldest past SERVER_RECENT_MAX. */
static void
route_recent_add(struct server *srv, const uint8_t fp[IDSET_FP_BYTES])
{
	if (idring_add(srv->recent, fp) != 0)
		log_warn("cannot remember an acknowledged envelope: out of memory");
}

/*
 * 1 if recipient already holds sender's msg_id in the store, queued or
 * acknowledged.  The filter answers most of these without the store.  Only
 * asked before a live push: the commit would notice the duplicate too, but
 * only after the copy had gone out.
 */
static int
route_stored(struct server *srv, const char *recipient, const char *sender,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES], const uint8_t fp[IDSET_FP_BYTES])
{
	int found = 0;

	if (!idbloom_maybe(srv->stored, fp))
		return 0;
	if (store_queue_has(srv->store, recipient, sender, msg_id, &found) != 0) {
		log_warn("%s: cannot look up an envelope: %s", recipient,
		        store_last_error(srv->store));
		return 0;
	}
	return found;
}

static int
route_stored_load_one(void *arg, const char *recipient, const char *sender,
        const uint8_t msg_id[STORE_MSG_ID_BYTES])
{
	struct server *srv = arg;
	uint8_t fp[IDSET_FP_BYTES];

	route_fp(srv, fp, recipient, sender, msg_id);
	idbloom_add(srv->stored, fp);
	return 0;
}

static int
route_count_one(void *arg, const char *recipient, const char *sender,
        const uint8_t msg_id[STORE_MSG_ID_BYTES])
{
	(*(size_t *)arg)++;
	return 0;
}

/* (Re)build the store filter, sized for twice what the store holds now. */
static int
route_stored_load(struct server *srv)
{
	struct idbloom *old = srv->stored;
	size_t n = 0;
	int r;

	if ((r = store_queue_keys(srv->store, route_count_one, &n)) != 0)
		goto fail;
	if ((r = idbloom_new(&srv->stored, 2 * n > STORED_MIN_KEYS ? 2 * n : STORED_MIN_KEYS)) !=
	        0) {
		srv->stored = old;
		return r;
	}
	if ((r = store_queue_keys(srv->store, route_stored_load_one, srv)) != 0) {
		idbloom_free(srv->stored);
		srv->stored = old;
		goto fail;
	}
	idbloom_free(old);
	log_debug("duplicate filter: %zu envelopes in the store", n);
	return 0;
fail:
	log_error("cannot read the queue's envelope ids: %s", store_last_error(srv->store));
	return r;
}

int
server_route_init(struct server *srv)
{
	int r;

	sotto_random(srv->fp_key, sizeof(srv->fp_key));
	if ((r = pidx_init(&srv->pending_idx)) != 0 ||
	        (r = idring_new(&srv->recent, SERVER_RECENT_MAX)) != 0 ||
	        (r = hmap_new(&srv->group_flight)) != 0)
		return r;
	return route_stored_load(srv);
}

void
server_route_prune(struct server *srv)
{
	/* Past its size the filter answers "maybe" too often: start again from the store. */
	if (idbloom_count(srv->stored) > idbloom_capacity(srv->stored))
		(void)route_stored_load(srv);
}

static void
route_req_free(struct pending_req *req)
{
	free(req);
}

static void
route_reply_group(struct conn *c, const struct pending_req *req)
{
	Sotto__AckGroup ag;
	Sotto__Frame rf;

	sotto__ack_group__init(&ag);
	frame_init(&rf, req->id);
	rf.body_case = SOTTO__FRAME__BODY_ACK_GROUP;
	rf.ack_group = &ag;
	ag.msg_id = proto_bytes(req->msg_id, PROTO_MSG_ID_BYTES);
	ag.group_id = proto_bytes(req->group_id, PROTO_GROUP_ID_BYTES);
	ag.acks = req->ack_ptrs;
	ag.n_acks = req->n_acks;
	server_send(c, &rf);
}

/*
 * A group message is answered: every member has it or has it queued.  Its
 * record goes into the recent set, where a later resend finds it, unless a
 * member failed (a resend should try that member again).
 */
static void
route_group_landed(struct server *srv, struct pending_req *req)
{
	size_t i;

	hmap_del(srv->group_flight, req->gfp, IDSET_FP_BYTES);
	req->in_flight = 0;
	for (i = 0; i < req->n_acks; i++) {
		if (req->acks[i].error != 0)
			return;
	}
	route_recent_add(srv, req->gfp);
}

static void route_req_reply(struct server *srv, struct pending_req *req);

/* Resends that arrived while req was in flight get its answer too. */
static void
route_group_resends(struct server *srv, struct pending_req *req)
{
	struct pending_req *r;
	size_t i;

	while ((r = req->resends) != NULL) {
		req->resends = r->resend_next;
		for (i = 0; i < r->n_acks && i < req->n_acks; i++) {
			r->acks[i].stored = req->acks[i].stored;
			r->acks[i].error = req->acks[i].error;
			r->acks[i].recipient_online = req->acks[i].recipient_online;
			r->acks[i].last_seen = req->acks[i].last_seen;
		}
		route_req_reply(srv, r);
	}
}

/* Send the Ack, AckMulti or AckGroup of req (if its conn is still there) and free it. */
static void
route_req_reply(struct server *srv, struct pending_req *req)
{
	struct conn *c = server_conn_by_serial(srv, req->conn_serial);
	Sotto__AckMulti am;
	Sotto__Frame rf;

	sotto__ack_multi__init(&am);
	if (req->in_flight)
		route_group_landed(srv, req);
	if (c != NULL && c->state == CONN_READY) {
		frame_init(&rf, req->id);
		if (req->group) {
			route_reply_group(c, req);
		} else if (req->multi) {
			rf.body_case = SOTTO__FRAME__BODY_ACK_MULTI;
			rf.ack_multi = &am;
			am.msg_id = proto_bytes(req->msg_id, PROTO_MSG_ID_BYTES);
			am.acks = req->ack_ptrs;
			am.n_acks = req->n_acks;
			server_send(c, &rf);
		} else if (req->acks[0].error != 0) {
			server_send_error(c, req->id, req->acks[0].error, req->names[0], 0);
		} else {
			rf.body_case = SOTTO__FRAME__BODY_ACK;
			rf.ack = &req->acks[0];
			server_send(c, &rf);
		}
	}
	route_group_resends(srv, req);
	route_req_free(req);
}

/* One recipient of req is settled: stored (or refused with error). */
static void
route_req_settle(
        struct server *srv, struct pending_req *req, size_t idx, int stored, uint32_t error)
{
	req->acks[idx].stored = stored;
	if (error != 0)
		req->acks[idx].error = error;
	if (--req->outstanding == 0)
		route_req_reply(srv, req);
}

/* Answer p's sender, and every resend that waited on p, alike. */
static void
route_pending_settle(struct server *srv, struct pending *p, int stored, uint32_t error)
{
	struct pending_req *req = p->req;
	struct pending_dup *d;

	p->req = NULL;
	if (req != NULL)
		route_req_settle(srv, req, p->ack_index, stored, error);
	while ((d = p->dups) != NULL) {
		p->dups = d->next;
		route_req_settle(srv, d->req, d->ack_index, stored, error);
		free(d);
	}
}

#define ROUTE_POOL_SEALED 512  /* envelopes this small are recycled */
#define ROUTE_POOL_MAX    4096 /* at most this many kept for reuse (about 3 MB) */

/* Forget p, which is on no list and answered. */
static void
route_pending_free(struct server *srv, struct pending *p)
{
	if (p->indexed)
		pidx_del(&srv->pending_idx, p);
	srv->pending_bytes -= p->sealed_len;
	if (p->pooled && srv->n_pool < ROUTE_POOL_MAX) {
		TAILQ_INSERT_HEAD(&srv->pool, p, entry);
		srv->n_pool++;
		return;
	}
	free(p);
}

/*
 * A struct pending with room for len sealed bytes.  Small envelopes, the
 * usual kind, are recycled through a bounded pool instead of going through
 * malloc and free each time.
 */
static struct pending *
route_pending_alloc(struct server *srv, size_t len)
{
	struct pending *p;
	int pooled = len <= ROUTE_POOL_SEALED;

	if (pooled && (p = TAILQ_FIRST(&srv->pool)) != NULL) {
		TAILQ_REMOVE(&srv->pool, p, entry);
		srv->n_pool--;
	} else if ((p = malloc(sizeof(*p) + (pooled ? ROUTE_POOL_SEALED : len))) == NULL) {
		return NULL;
	}
	memset(p, 0, sizeof(*p));
	p->pooled = pooled;
	return p;
}

/* Push one envelope to c as Deliver; a group envelope's bytes are group id || sealed. */
static void
route_deliver_init(Sotto__Frame *f, Sotto__Deliver *d, const char *from,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES], int64_t ts_ms, const uint8_t *sealed, size_t len,
        int group)
{
	sotto__deliver__init(d);
	frame_init(f, 0);
	f->body_case = SOTTO__FRAME__BODY_DELIVER;
	f->deliver = d;
	d->msg_id = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	d->from = proto_str(from);
	d->timestamp_ms = (uint64_t)ts_ms;
	if (group && len >= PROTO_GROUP_ID_BYTES) {
		d->group_id = proto_bytes(sealed, PROTO_GROUP_ID_BYTES);
		sealed += PROTO_GROUP_ID_BYTES;
		len -= PROTO_GROUP_ID_BYTES;
	}
	d->sealed = proto_bytes(sealed, len);
}

static int
route_push_deliver(struct conn *c, const char *from, const uint8_t msg_id[PROTO_MSG_ID_BYTES],
        int64_t ts_ms, const uint8_t *sealed, size_t len, int group)
{
	Sotto__Deliver d;
	Sotto__Frame f;

	route_deliver_init(&f, &d, from, msg_id, ts_ms, sealed, len, group);
	return server_send(c, &f);
}

static int
route_push_delivered(
        struct conn *c, const char *to, const uint8_t msg_id[PROTO_MSG_ID_BYTES], int64_t ts_ms)
{
	Sotto__Delivered d;
	Sotto__DeliveryReceipt rc, *rcp;
	Sotto__Frame f;

	sotto__delivered__init(&d);
	sotto__delivery_receipt__init(&rc);
	rcp = &rc;
	frame_init(&f, 0);
	f.body_case = SOTTO__FRAME__BODY_DELIVERED;
	f.delivered = &d;
	d.receipts = &rcp;
	d.n_receipts = 1;
	rc.msg_id = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	rc.to = proto_str(to);
	rc.timestamp_ms = (uint64_t)ts_ms;
	return server_send(c, &f);
}

/* 1 if u's connection takes live pushes right now. */
static int
route_live(struct server *srv, struct srv_user *u)
{
	struct conn *c = u->conn;

	if (c == NULL || c->state != CONN_READY || !c->live)
		return 0;
	if (server_conn_outlen(c) >= srv->cfg->output_high_water) {
		log_debug(
		        "%s: %s is reading slowly; queueing until it catches up", c->peer, u->name);
		c->live = 0;
		return 0;
	}
	return 1;
}

#define ROUTE_RECEIPT_STACK      32 /* receipts in one Delivered frame built without allocating */
#define ROUTE_RECEIPTS_PER_FRAME PROTO_MAX_ACK_IDS /* the most one Delivered frame holds */

/* A delivery receipt owed to sender; order keeps each sender's receipts in ack order. */
struct route_receipt {
	struct srv_user *sender;
	size_t order;
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
};

static int
route_receipt_cmp(const void *a, const void *b)
{
	const struct route_receipt *x = a, *y = b;
	uintptr_t px = (uintptr_t)x->sender, py = (uintptr_t)y->sender;

	if (px != py)
		return px < py ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Pack n of c's waiting receipts (from i) as one Delivered frame. */
static int
route_push_receipts(struct conn *c, size_t i, size_t n)
{
	Sotto__DeliveryReceipt rc_stack[ROUTE_RECEIPT_STACK], *rc = rc_stack;
	Sotto__DeliveryReceipt *rcp_stack[ROUTE_RECEIPT_STACK], **rcp = rcp_stack;
	Sotto__Delivered d;
	Sotto__Frame f;
	size_t k;
	int r;

	if (n > ROUTE_RECEIPT_STACK) {
		rcp = NULL;
		if ((rc = calloc(n, sizeof(*rc))) == NULL ||
		        (rcp = calloc(n, sizeof(*rcp))) == NULL) {
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
	}
	for (k = 0; k < n; k++) {
		sotto__delivery_receipt__init(&rc[k]);
		rc[k].msg_id = proto_bytes(c->rcpt[i + k].msg_id, PROTO_MSG_ID_BYTES);
		rc[k].to = c->rcpt[i + k].to;
		rc[k].timestamp_ms = (uint64_t)c->rcpt[i + k].ts_ms;
		rcp[k] = &rc[k];
	}
	sotto__delivered__init(&d);
	d.receipts = rcp;
	d.n_receipts = n;
	frame_init(&f, 0);
	f.body_case = SOTTO__FRAME__BODY_DELIVERED;
	f.delivered = &d;
	r = server_send(c, &f);
out:
	if (rc != rc_stack)
		free(rc);
	if (rcp != rcp_stack)
		free(rcp);
	return r;
}

/* Queue one receipt in user's queue; -1, logged, if the store refused it. */
static int
route_store_receipt(struct server *srv, const char *user, const char *to,
        const uint8_t msg_id[PROTO_MSG_ID_BYTES], int64_t ts_ms)
{
	if (server_batch(srv) != 0 || store_queue_push(srv->store, user, STORE_KIND_DELIVERED, to,
	                                      msg_id, ts_ms, NULL, 0, NULL, NULL) != 0) {
		log_warn("%s: cannot queue a delivery receipt: %s", user,
		        store_last_error(srv->store));
		return -1;
	}
	return 0;
}

/* Queue receipts in the store for c's user, who will not get them live. */
static void
route_store_receipts(struct server *srv, const char *user, const struct conn_receipt *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (route_store_receipt(srv, user, v[i].to, v[i].msg_id, v[i].ts_ms) != 0)
			return;
	}
}

void
server_route_flush_receipts(struct conn *c)
{
	size_t i, n;

	for (i = 0; i < c->n_rcpt; i += n) {
		n = c->n_rcpt - i < ROUTE_RECEIPTS_PER_FRAME ? c->n_rcpt - i
		                                             : ROUTE_RECEIPTS_PER_FRAME;
		if (route_push_receipts(c, i, n) != 0) {
			/* Not sent: the store keeps them for the next login. */
			if (c->user != NULL)
				route_store_receipts(
				        c->srv, c->user->name, &c->rcpt[i], c->n_rcpt - i);
			break;
		}
	}
	c->n_rcpt = 0;
}

/*
 * Give c n receipts (from v) for the next flush, which sends all that
 * accumulated during the loop pass as one Delivered frame: a group message
 * acknowledged by a hundred members costs its sender one frame, not a
 * hundred.
 */
static int
route_defer_receipts(
        struct conn *c, const struct route_receipt *v, size_t n, const char *to, int64_t ts_ms)
{
	struct conn_receipt *nr;
	size_t i, cap, tolen;

	if (c->n_rcpt + n > c->cap_rcpt) {
		cap = c->cap_rcpt != 0 ? c->cap_rcpt : 16;
		while (cap < c->n_rcpt + n)
			cap *= 2;
		if ((nr = reallocarray(c->rcpt, cap, sizeof(*nr))) == NULL)
			return SOTTO_ERR_NOMEM;
		c->rcpt = nr;
		c->cap_rcpt = cap;
	}
	tolen = strnlen(to, PROTO_USERNAME_MAX);
	for (i = 0; i < n; i++) {
		nr = &c->rcpt[c->n_rcpt++];
		memcpy(nr->msg_id, v[i].msg_id, PROTO_MSG_ID_BYTES);
		memcpy(nr->to, to, tolen);
		nr->to[tolen] = '\0';
		nr->ts_ms = ts_ms;
	}
	server_conn_dirty(c);
	return 0;
}

static void
route_receipts(struct server *srv, struct route_receipt *v, size_t n, const char *to, int64_t ts_ms)
{
	struct srv_user *u;
	size_t i, j, k;

	if (n > 1)
		qsort(v, n, sizeof(*v), route_receipt_cmp);
	for (i = 0; i < n; i = j) {
		u = v[i].sender;
		for (j = i + 1; j < n && v[j].sender == u; j++)
			;
		if (u->deleted)
			continue;
		if (route_live(srv, u) &&
		        route_defer_receipts(u->conn, &v[i], j - i, to, ts_ms) == 0)
			continue;
		for (k = i; k < j; k++) {
			if (route_store_receipt(srv, u->name, to, v[k].msg_id, ts_ms) != 0)
				break;
		}
	}
}

/*
 * What a group message's recipients share: the Deliver frame, packed once; the
 * clock, read once; and the duplicate-check fingerprints, computed up front so
 * that the lookups they lead to are already on their way into the cache.
 */
struct route_packed {
	uint8_t *frame;
	size_t len;
	uint8_t (*fp)[IDSET_FP_BYTES]; /* one per recipient, by index */
	int64_t mono_ms;
	int done; /* a resend of a group message already answered: nothing goes out */
};

static void route_enqueue(struct conn *c, struct pending_req *req, size_t idx, struct srv_user *r,
        const uint8_t *data, size_t len, int group, int64_t ts_ms, const struct route_packed *pk);

/* Accept one envelope for one recipient of req (index idx). */
static void
route_one(struct conn *c, struct pending_req *req, size_t idx, const char *to,
        const ProtobufCBinaryData *sealed)
{
	struct server *srv = c->srv;
	Sotto__Ack *ack = &req->acks[idx];
	struct srv_user *r;
	size_t keylen;

	sotto__ack__init(ack);
	ack->msg_id = proto_bytes(req->msg_id, PROTO_MSG_ID_BYTES);
	ack->to = req->names[idx];
	if (to == NULL || proto_username_normalize(req->names[idx], to) != 0) {
		/* Echo what was asked for, cut to the longest a name can be. */
		keylen = to != NULL ? strnlen(to, PROTO_USERNAME_MAX) : 0;
		memcpy(req->names[idx], to != NULL ? to : "", keylen);
		req->names[idx][keylen] = '\0';
		route_req_settle(srv, req, idx, 0, SOTTO__ERROR_CODE__ERR_BAD_USERNAME);
		return;
	}
	if ((r = server_user(srv, req->names[idx])) == NULL || r->deleted) {
		route_req_settle(srv, req, idx, 0, SOTTO__ERROR_CODE__ERR_NO_SUCH_USER);
		return;
	}
	if (sealed->len == 0) {
		route_req_settle(srv, req, idx, 0, SOTTO__ERROR_CODE__ERR_BAD_REQUEST);
		return;
	}
	route_enqueue(c, req, idx, r, sealed->data, sealed->len, 0, server_now_ms(), NULL);
}

/*
 * Queue (and push, if it is live) data for recipient r of req (index idx, its
 * Ack set up).  A group envelope (data is group id || sealed) takes the same
 * path as a direct one: pending or inflight, the same duplicate checks, and it
 * keeps its kind when written.  ts_ms is what Deliver shows; pk, if not
 * NULL, is the Deliver frame already packed (the same for every member).
 */
static void
route_enqueue(struct conn *c, struct pending_req *req, size_t idx, struct srv_user *r,
        const uint8_t *data, size_t len, int group, int64_t ts_ms, const struct route_packed *pk)
{
	struct server *srv = c->srv;
	Sotto__Ack *ack = &req->acks[idx];
	uint8_t fp[IDSET_FP_BYTES];
	struct pending *p, *orig;
	struct pending_dup *d;
	uint64_t h;
	int hidden;

	hidden = server_blocks(srv, r, c->user);
	ack->recipient_online = !hidden && r->conn != NULL;
	ack->last_seen = hidden || r->conn != NULL ? 0 : (uint64_t)r->last_seen;
	/*
	 * A blocked sender's envelope is dropped, and the Ack looks like any
	 * other.  A resend of what the recipient has is acknowledged again.
	 */
	if (pk != NULL)
		memcpy(fp, pk->fp[idx], IDSET_FP_BYTES);
	else
		route_fp(srv, fp, r->name, c->user->name, req->msg_id);
	if (hidden || (pk != NULL ? pk->done : idring_has(srv->recent, fp)) ||
	        (route_live(srv, r) &&
	                route_stored(srv, r->name, c->user->name, req->msg_id, fp))) {
		route_req_settle(srv, req, idx, 1, 0);
		return;
	}
	h = pidx_hash(&srv->pending_idx, r, req->msg_id);
	orig = pidx_get(&srv->pending_idx, r, req->msg_id, h);
	if (orig != NULL && orig->sender == c->user) {
		/* A resend while the first copy is in memory: answered with it. */
		if ((d = malloc(sizeof(*d))) == NULL) {
			route_req_settle(srv, req, idx, 0, SOTTO__ERROR_CODE__ERR_INTERNAL);
			return;
		}
		d->req = req;
		d->ack_index = idx;
		d->next = orig->dups;
		orig->dups = d;
		return;
	}
	if ((p = route_pending_alloc(srv, len)) == NULL) {
		route_req_settle(srv, req, idx, 0, SOTTO__ERROR_CODE__ERR_INTERNAL);
		return;
	}
	p->req = req;
	p->ack_index = idx;
	p->recipient = r;
	p->sender = c->user;
	memcpy(p->msg_id, req->msg_id, PROTO_MSG_ID_BYTES);
	memcpy(p->fp, fp, IDSET_FP_BYTES);
	p->timestamp_ms = ts_ms;
	memcpy(p->sealed, data, len);
	p->sealed_len = len;
	p->group = group;
	/*
	 * Another sender's envelope under the same id stays out of the index,
	 * which a DeliverAck (naming only the id) could not tell apart: it goes
	 * through the queue.
	 */
	if (orig == NULL)
		pidx_put(&srv->pending_idx, p, h);
	srv->pending_bytes += p->sealed_len;
	srv->stat_routed++;
	if (p->indexed && route_live(srv, r) &&
	        (pk != NULL ? server_send_packed(r->conn, pk->frame, pk->len)
	                    : route_push_deliver(r->conn, p->sender->name, p->msg_id,
	                              p->timestamp_ms, p->sealed, p->sealed_len, p->group)) == 0) {
		p->pushed_serial = r->conn->serial;
		p->pushed_ms = pk != NULL ? pk->mono_ms : server_mono_ms();
		/*
		 * A recipient that let an envelope wait out live_wait_ms lately
		 * would only hold up its senders' Acks: its envelopes are written
		 * at once (it still has them live).
		 */
		if (p->pushed_ms >= r->conn->slow_ack_until_ms) {
			p->inflight = 1;
			TAILQ_INSERT_TAIL(&srv->inflight, p, entry);
			server_commit_by(srv, p->pushed_ms, srv->cfg->live_wait_ms);
			return;
		}
	} else {
		r->unpushed++;
	}
	TAILQ_INSERT_TAIL(&srv->pending, p, entry);
	server_commit_within(srv, srv->cfg->commit_window_ms);
}

static struct pending_req *
route_req_new(struct conn *c, uint64_t id, const ProtobufCBinaryData *msg_id, size_t n, int multi)
{
	struct pending_req *req;
	size_t i;

	/* One block: the request, then its acks, their pointers and the names (n <= 1024). */
	if ((req = calloc(1, sizeof(*req) + n * (sizeof(*req->acks) + sizeof(*req->ack_ptrs) +
	                                                sizeof(*req->names)))) == NULL)
		return NULL;
	req->acks = (Sotto__Ack *)(req + 1);
	req->ack_ptrs = (Sotto__Ack **)(req->acks + n);
	req->names = (char(*)[PROTO_USERNAME_MAX + 1])(req->ack_ptrs + n);
	req->conn_serial = c->serial;
	req->id = id;
	req->multi = multi;
	req->n_acks = n;
	req->outstanding = n;
	memcpy(req->msg_id, msg_id->data, PROTO_MSG_ID_BYTES);
	for (i = 0; i < n; i++)
		req->ack_ptrs[i] = &req->acks[i];
	return req;
}

/* Write everything out at once if memory holds too much. */
static void
route_check_memory(struct server *srv)
{
	if (srv->pending_bytes > SERVER_PENDING_MAX_BYTES) {
		srv->commit_all = 1;
		server_commit(srv);
		srv->commit_all = 0;
	}
}

static int
route_send(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__Send *s = f->send;
	struct pending_req *req;

	if (s->msg_id.len != PROTO_MSG_ID_BYTES)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "msg_id must be 16 bytes", 0);
	if ((req = route_req_new(c, id, &s->msg_id, 1, 0)) == NULL)
		return SOTTO_ERR_NOMEM;
	route_one(c, req, 0, s->to, &s->sealed);
	route_check_memory(c->srv);
	return 0;
}

static int
route_send_multi(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	const Sotto__SendMulti *s = f->send_multi;
	struct pending_req *req;
	size_t i;

	if (s->msg_id.len != PROTO_MSG_ID_BYTES)
		return server_send_error(
		        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "msg_id must be 16 bytes", 0);
	if (s->n_recipients == 0 || s->n_recipients > PROTO_MAX_RECIPIENTS)
		return server_send_error(c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST,
		        "between 1 and 1024 recipients", 0);
	if ((req = route_req_new(c, id, &s->msg_id, s->n_recipients, 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	/* Hold the reply until every recipient is handled, even the ones settled at once. */
	req->outstanding++;
	for (i = 0; i < s->n_recipients; i++)
		route_one(c, req, i, s->recipients[i]->to, &s->recipients[i]->sealed);
	if (--req->outstanding == 0)
		route_req_reply(c->srv, req);
	route_check_memory(c->srv);
	return 0;
}

/* Take p off server.pending or server.inflight, whichever holds it. */
static void
route_pending_remove(struct server *srv, struct pending *p)
{
	if (p->inflight)
		TAILQ_REMOVE(&srv->inflight, p, entry);
	else
		TAILQ_REMOVE(&srv->pending, p, entry);
	p->inflight = 0;
}

#define ROUTE_ACK_STACK 64 /* ids a DeliverAck usually carries: no allocation up to this */

static int
route_deliver_ack(struct conn *c, uint64_t id, const Sotto__Frame *f)
{
	struct server *srv = c->srv;
	const Sotto__DeliverAck *da = f->deliver_ack;
	uint8_t ids_stack[ROUTE_ACK_STACK][STORE_MSG_ID_BYTES],
	        (*ids)[STORE_MSG_ID_BYTES] = ids_stack;
	struct route_receipt rv_stack[ROUTE_ACK_STACK], *rv = rv_stack;
	struct store_receipt *rc = NULL;
	uint8_t fp[IDSET_FP_BYTES];
	struct commit_wait *w;
	struct srv_user *u;
	struct pending *p;
	size_t i, n = 0, nrv = 0, nrc = 0, ndel = 0, cap = ROUTE_ACK_STACK;
	int64_t now_ms = server_now_ms();
	int r;

	if (da->n_msg_ids > PROTO_MAX_ACK_IDS) {
		if (id != 0)
			return server_send_error(
			        c, id, SOTTO__ERROR_CODE__ERR_BAD_REQUEST, "too many ids", 0);
		return 0;
	}
	if (da->n_msg_ids > ROUTE_ACK_STACK) {
		cap = da->n_msg_ids;
		ids = NULL;
		rv = NULL;
		if ((ids = calloc(cap, sizeof(*ids))) == NULL ||
		        (rv = calloc(cap, sizeof(*rv))) == NULL) {
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
	}
	for (i = 0; i < da->n_msg_ids; i++) {
		if (da->msg_ids[i].len != PROTO_MSG_ID_BYTES)
			continue;
		if ((p = pidx_get(&srv->pending_idx, c->user, da->msg_ids[i].data,
		             pidx_hash(&srv->pending_idx, c->user, da->msg_ids[i].data))) != NULL) {
			/* The fast path: acknowledged while in memory, never written. */
			route_pending_remove(srv, p);
			if (p->pushed_serial == 0 && p->recipient->unpushed > 0)
				p->recipient->unpushed--;
			route_pending_settle(srv, p, 1, 0);
			/* A group message's resends are caught by its own record. */
			if (!p->group)
				route_recent_add(srv, p->fp);
			rv[nrv].sender = p->sender;
			rv[nrv].order = nrv;
			memcpy(rv[nrv].msg_id, p->msg_id, PROTO_MSG_ID_BYTES);
			nrv++;
			route_pending_free(srv, p);
			continue;
		}
		memcpy(ids[n++], da->msg_ids[i].data, STORE_MSG_ID_BYTES);
	}
	route_receipts(srv, rv, nrv, c->user->name, now_ms);
	/*
	 * Only rows this connection was sent can go (seq <= drain_seq): when it
	 * was sent none that are left, the ids are receipts it had live, or
	 * unknown.
	 */
	if (n > 0 && c->stored_out > 0) {
		if ((r = server_batch(srv)) != 0 ||
		        (r = store_queue_delete(srv->store, c->user->name,
		                 (const uint8_t(*)[STORE_MSG_ID_BYTES])ids, n, c->drain_seq,
		                 server_now(), &rc, &nrc, &ndel)) != 0)
			goto out;
		c->stored_out -= ndel < c->stored_out ? ndel : c->stored_out;
		/* Rows from several senders may share an id: receipts go out a buffer at a time. */
		for (i = 0, nrv = 0; i < nrc; i++) {
			route_fp(srv, fp, c->user->name, rc[i].sender, rc[i].msg_id);
			route_recent_add(srv, fp);
			if ((u = server_user(srv, rc[i].sender)) == NULL)
				continue;
			rv[nrv].sender = u;
			rv[nrv].order = nrv;
			memcpy(rv[nrv].msg_id, rc[i].msg_id, PROTO_MSG_ID_BYTES);
			if (++nrv == cap) {
				route_receipts(srv, rv, nrv, c->user->name, now_ms);
				nrv = 0;
			}
		}
		route_receipts(srv, rv, nrv, c->user->name, now_ms);
	}
	if (id != 0) {
		if ((w = calloc(1, sizeof(*w))) == NULL) {
			r = SOTTO_ERR_NOMEM;
			goto out;
		}
		w->conn_serial = c->serial;
		w->id = id;
		TAILQ_INSERT_TAIL(&srv->commit_waits, w, entry);
		if ((r = server_batch(srv)) != 0)
			goto out;
	}
	r = 0;
out:
	if (ids != ids_stack)
		free(ids);
	if (rv != rv_stack)
		free(rv);
	free(rc);
	return r;
}

int
server_route_due(struct server *srv)
{
	struct pending *p = TAILQ_FIRST(&srv->inflight);

	if (!TAILQ_EMPTY(&srv->pending))
		return 1;
	if (p == NULL)
		return 0;
	return srv->stopping || srv->commit_all ||
	       server_mono_ms() - p->pushed_ms >= (int64_t)srv->cfg->live_wait_ms;
}

/* Write p to its recipient's queue in the open batch; it moves to server.committing. */
static int
route_write(struct server *srv, struct pending *p)
{
	struct conn *c;
	uint64_t seq;
	int dup, r;

	TAILQ_INSERT_TAIL(&srv->committing, p, entry);
	r = store_queue_push(srv->store, p->recipient->name,
	        p->group ? STORE_KIND_GROUP : STORE_KIND_ENVELOPE, p->sender->name, p->msg_id,
	        p->timestamp_ms, p->sealed, p->sealed_len, &seq, &dup);
	if (r == SOTTO_ERR_NOTFOUND)
		return 0; /* the recipient was deleted meanwhile */
	if (r != 0) {
		log_error("cannot queue an envelope for %s: %s", p->recipient->name,
		        store_last_error(srv->store));
		return r;
	}
	idbloom_add(srv->stored, p->fp);
	/*
	 * A live connection has everything queued before this row, so its drain
	 * may skip it.  One that is not live may still owe older rows written
	 * while this one waited: it gets this one again rather than lose those.
	 */
	if (p->pushed_serial != 0 && (c = server_conn_by_serial(srv, p->pushed_serial)) != NULL &&
	        c->live && seq != 0 && c->drain_seq < seq) {
		c->drain_seq = seq;
		c->stored_out++;
	}
	return 0;
}

int
server_route_commit(struct server *srv)
{
	int64_t now = server_mono_ms(), wait = srv->cfg->live_wait_ms;
	int all = srv->stopping || srv->commit_all;
	struct pending *p;
	struct conn *c;
	int r;

	while ((p = TAILQ_FIRST(&srv->pending)) != NULL) {
		TAILQ_REMOVE(&srv->pending, p, entry);
		if ((r = route_write(srv, p)) != 0)
			return r;
	}
	while ((p = TAILQ_FIRST(&srv->inflight)) != NULL && (all || now - p->pushed_ms >= wait)) {
		TAILQ_REMOVE(&srv->inflight, p, entry);
		p->inflight = 0;
		if (!all && (c = server_conn_by_serial(srv, p->pushed_serial)) != NULL)
			c->slow_ack_until_ms = now + SERVER_SLOW_ACK_MS;
		if ((r = route_write(srv, p)) != 0)
			return r;
	}
	return 0;
}

/* Kick the drain of u's connection if it is waiting for this commit. */
static void
route_kick(struct srv_user *u, struct conn **kick, size_t *nkick, size_t cap)
{
	struct conn *c = u->conn;

	if (c == NULL || c->state != CONN_READY || c->live || c->drain_queued || *nkick >= cap)
		return;
	c->drain_queued = 1;
	kick[(*nkick)++] = c;
}

void
server_route_after_commit(struct server *srv, int committed)
{
	struct conn *kick[64], *c;
	struct pending *p;
	size_t i, nkick = 0;

	/* Deletions were rolled back too: what was sent may be in the store again. */
	if (!committed) {
		TAILQ_FOREACH(c, &srv->conns, entry)
		c->stored_out = SIZE_MAX / 2;
	}

	while ((p = TAILQ_FIRST(&srv->committing)) != NULL) {
		TAILQ_REMOVE(&srv->committing, p, entry);
		if (p->pushed_serial == 0 && p->recipient->unpushed > 0)
			p->recipient->unpushed--;
		route_pending_settle(
		        srv, p, committed, committed ? 0 : SOTTO__ERROR_CODE__ERR_INTERNAL);
		route_kick(p->recipient, kick, &nkick, sizeof(kick) / sizeof(kick[0]));
		route_pending_free(srv, p);
	}
	for (i = 0; i < nkick; i++) {
		kick[i]->drain_queued = 0;
		server_route_drain(kick[i]);
	}
}

void
server_route_rearm(struct server *srv)
{
	struct pending *p;

	if (!TAILQ_EMPTY(&srv->pending))
		server_commit_within(srv, srv->cfg->commit_window_ms);
	else if ((p = TAILQ_FIRST(&srv->inflight)) != NULL)
		server_commit_within(
		        srv, p->pushed_ms + (int64_t)srv->cfg->live_wait_ms - server_mono_ms());
}

void
server_route_conn_gone(struct conn *c)
{
	struct server *srv = c->srv;
	struct pending *p, *next;

	/* Receipts that were waiting for the flush wait in the store instead. */
	if (c->n_rcpt > 0 && c->user != NULL)
		route_store_receipts(srv, c->user->name, c->rcpt, c->n_rcpt);
	c->n_rcpt = 0;
	/* What was pushed to c but not acknowledged must reach the next connection. */
	for (p = TAILQ_FIRST(&srv->pending); p != NULL; p = TAILQ_NEXT(p, entry)) {
		if (p->pushed_serial == c->serial) {
			p->pushed_serial = 0;
			p->recipient->unpushed++;
		}
	}
	for (p = TAILQ_FIRST(&srv->inflight); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->pushed_serial != c->serial)
			continue;
		TAILQ_REMOVE(&srv->inflight, p, entry);
		p->inflight = 0;
		p->pushed_serial = 0;
		p->recipient->unpushed++;
		TAILQ_INSERT_TAIL(&srv->pending, p, entry);
		server_commit_within(srv, srv->cfg->commit_window_ms);
	}
}

void
server_route_free(struct server *srv)
{
	struct pending_list *lists[] = {&srv->pending, &srv->inflight, &srv->committing};
	struct pending *p;
	size_t i;

	/* Settling frees each request once its last envelope is answered. */
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		while ((p = TAILQ_FIRST(lists[i])) != NULL) {
			TAILQ_REMOVE(lists[i], p, entry);
			route_pending_settle(srv, p, 0, SOTTO__ERROR_CODE__ERR_INTERNAL);
			route_pending_free(srv, p);
		}
	}
	while ((p = TAILQ_FIRST(&srv->pool)) != NULL) {
		TAILQ_REMOVE(&srv->pool, p, entry);
		free(p);
	}
	srv->n_pool = 0;
	pidx_free(&srv->pending_idx);
	hmap_free(srv->group_flight);
	srv->group_flight = NULL;
}

struct drain_ctx {
	struct conn *c;
	size_t n;
};

static int
route_drain_cb(void *arg, const struct store_msg *m)
{
	struct drain_ctx *d = arg;
	struct conn *c = d->c;

	if (m->kind != STORE_KIND_DELIVERED)
		route_push_deliver(c, m->peer, m->msg_id, m->timestamp_ms, m->sealed, m->sealed_len,
		        m->kind == STORE_KIND_GROUP);
	else
		route_push_delivered(c, m->peer, m->msg_id, m->timestamp_ms);
	c->drain_seq = m->seq;
	c->stored_out++;
	d->n++;
	if (server_conn_outlen(c) >= c->srv->cfg->output_high_water)
		return 1;
	return 0;
}

void
server_route_drain(struct conn *c)
{
	struct server *srv = c->srv;
	struct drain_ctx d;
	int r;

	if (c->state != CONN_READY || c->user == NULL)
		return;
	for (;;) {
		if (server_conn_outlen(c) >= srv->cfg->output_high_water) {
			/* The write callback brings us back at half the mark. */
			c->live = 0;
			return;
		}
		d.c = c;
		d.n = 0;
		r = store_queue_fetch(srv->store, c->user->name, c->drain_seq, SERVER_DRAIN_BATCH,
		        route_drain_cb, &d);
		if (r < 0) {
			log_warn("%s: cannot read the queue: %s", c->user->name,
			        store_last_error(srv->store));
			return;
		}
		if (d.n < SERVER_DRAIN_BATCH && server_conn_outlen(c) < srv->cfg->output_high_water)
			break;
	}
	/* Envelopes still in the commit window will be drained after the commit. */
	c->live = c->user->unpushed == 0;
}

/* A resend of orig, which is still in flight: answered as orig is, nothing sent again. */
static int
route_group_resend(struct conn *c, uint64_t id, const ProtobufCBinaryData *mid,
        const uint8_t group_id[PROTO_GROUP_ID_BYTES], struct pending_req *orig)
{
	struct pending_req *req;
	size_t i;

	if ((req = route_req_new(c, id, mid, orig->n_acks, 1)) == NULL)
		return SOTTO_ERR_NOMEM;
	req->group = 1;
	memcpy(req->group_id, group_id, PROTO_GROUP_ID_BYTES);
	for (i = 0; i < orig->n_acks; i++) {
		sotto__ack__init(&req->acks[i]);
		req->acks[i].msg_id = proto_bytes(req->msg_id, PROTO_MSG_ID_BYTES);
		memcpy(req->names[i], orig->names[i], sizeof(req->names[i]));
		req->acks[i].to = req->names[i];
	}
	req->resend_next = orig->resends;
	orig->resends = req;
	return 0;
}

int
server_route_send_group(struct conn *c, uint64_t id, const uint8_t msg_id[PROTO_MSG_ID_BYTES],
        const uint8_t group_id[PROTO_GROUP_ID_BYTES], struct srv_user *const *members, size_t n,
        const ProtobufCBinaryData *sealed)
{
	ProtobufCBinaryData mid = proto_bytes(msg_id, PROTO_MSG_ID_BYTES);
	struct route_packed pk = {NULL, 0, NULL, 0, 0};
	struct pending_req *req = NULL, *orig;
	uint8_t gfp[IDSET_FP_BYTES];
	int64_t ts_ms = server_now_ms();
	Sotto__Deliver d;
	Sotto__Frame f;
	uint8_t *data;
	size_t i, len = PROTO_GROUP_ID_BYTES + sealed->len;
	int r = SOTTO_ERR_NOMEM;

	/*
	 * One record per group message catches its resends: the members' copies
	 * are not recorded one by one.  A resend while the first is in flight
	 * waits for its answer; one after it gets the answer again.
	 */
	route_fp(c->srv, gfp, "", c->user->name, msg_id);
	pk.done = idring_has(c->srv->recent, gfp);
	if (!pk.done && (orig = hmap_get(c->srv->group_flight, gfp, IDSET_FP_BYTES)) != NULL)
		return route_group_resend(c, id, &mid, group_id, orig);
	/* Stored and pushed as group id || sealed, so that the queue keeps the id. */
	if ((data = malloc(len)) == NULL)
		goto out;
	memcpy(data, group_id, PROTO_GROUP_ID_BYTES);
	memcpy(data + PROTO_GROUP_ID_BYTES, sealed->data, sealed->len);
	/* Every member's live Deliver is the same frame: pack it once. */
	route_deliver_init(&f, &d, c->user->name, msg_id, ts_ms, data, len, 1);
	if ((r = frame_encode(&f, &pk.frame, &pk.len)) != 0)
		goto out;
	r = SOTTO_ERR_NOMEM;
	if ((pk.fp = malloc(n * sizeof(*pk.fp) + 1)) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		route_fp(c->srv, pk.fp[i], members[i]->name, c->user->name, msg_id);
		idbloom_prefetch(c->srv->stored, pk.fp[i]);
	}
	pk.mono_ms = server_mono_ms();
	if ((req = route_req_new(c, id, &mid, n, 1)) == NULL)
		goto out;
	req->group = 1;
	memcpy(req->group_id, group_id, PROTO_GROUP_ID_BYTES);
	memcpy(req->gfp, gfp, IDSET_FP_BYTES);
	/* Without the record (no memory), a resend is checked member by member. */
	req->in_flight =
	        !pk.done && hmap_put(c->srv->group_flight, gfp, IDSET_FP_BYTES, req, NULL) == 0;
	req->outstanding++;
	for (i = 0; i < n; i++) {
		sotto__ack__init(&req->acks[i]);
		req->acks[i].msg_id = proto_bytes(req->msg_id, PROTO_MSG_ID_BYTES);
		/* Names in struct srv_user are normalized and fit. */
		memcpy(req->names[i], members[i]->name, sizeof(req->names[i]));
		req->acks[i].to = req->names[i];
		route_enqueue(c, req, i, members[i], data, len, 1, ts_ms, &pk);
	}
	if (--req->outstanding == 0)
		route_req_reply(c->srv, req);
	route_check_memory(c->srv);
	r = 0;
out:
	free(pk.frame);
	free(pk.fp);
	free(data);
	return r;
}

const struct server_handler server_route_handlers[] = {
        {SOTTO__FRAME__BODY_SEND, 0, route_send},
        {SOTTO__FRAME__BODY_SEND_MULTI, 0, route_send_multi},
        {SOTTO__FRAME__BODY_DELIVER_ACK, HANDLER_NOTIFY | HANDLER_NOLIMIT, route_deliver_ack},
        {0, 0, NULL},
};
