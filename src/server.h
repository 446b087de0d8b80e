/*
 * sottod internals shared by the server's source files: the server, its
 * connections, the in-memory caches in front of the store, and the request
 * dispatcher.  Each server-*.c file owns one family of requests and exports a
 * handler table that server.c registers.
 *
 * Connections: OpenSSL does each TLS handshake on the socket, then sottod
 * frees the SSL object and protects records itself (src/tlsrec.c), which
 * keeps an idle connection to a couple of KiB (see server.c).  Frames for a
 * connection are appended to its output buffer and leave at the end of the
 * loop pass, so a pass that answers many requests costs one write(2) per
 * peer.
 *
 * Lifetimes: a struct server owns every conn, srv_user and pending envelope.
 * A conn is never freed inside one of its own callbacks: server_conn_close()
 * marks it dead and the reaper frees it on the next loop pass.  Code that may
 * outlive a conn (an Ack after a commit) refers to it by its serial and looks
 * it up with server_conn_by_serial().
 *
 * Not thread-safe: everything runs on the one event-loop thread.
 */
#ifndef SOTTO_SERVER_H
#define SOTTO_SERVER_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "crypto/err.h"
#include "src/frame.h"
#include "src/hmap.h"
#include "src/idset.h"
#include "src/proto.h"
#include "src/server-config.h"
#include "src/store.h"
#include "src/tls.h"
#include "src/tlsrec.h"

#define SERVER_NAME              "sottod/" PACKAGE_VERSION
#define SERVER_ACCEPT_BACKOFF_MS 250                 /* pause after EMFILE */
#define SERVER_CLOSE_GRACE_MS    2000                /* flush time before a closing conn is cut */
#define SERVER_PENDING_MAX_BYTES (64u * 1024 * 1024) /* force a commit past this */
#define SERVER_RECENT_MAX        65536               /* acknowledged ids remembered in memory */
#define SERVER_DRAIN_BATCH       128                 /* queue items fetched per drain step */
#define SERVER_WHO_MAX           PROTO_MAX_WHO

#define SERVER_IO_CHUNK        16384                  /* one TLS record's worth of plaintext */
#define SERVER_SLOW_ACK_MS     10000                  /* no fast path this long after a late ack */
#define SERVER_READ_BUDGET     (16 * SERVER_IO_CHUNK) /* bytes read per conn per loop pass */
#define SERVER_FRAMES_PER_PASS 128                    /* requests handled per conn per loop pass */

/* Ciphertext between a socket and tlsrec, either way: a read's worth and a cut-short record. */
#define SERVER_IO_SCRATCH  (SERVER_READ_BUDGET + TLSREC_RECORD_MAX)
#define SERVER_FRAME_ARENA (128 * 1024) /* a decoded request; bigger ones spill to malloc */

enum conn_state {
	CONN_HANDSHAKE = 0, /* TLS handshake under way */
	CONN_HELLO,         /* waiting for Hello */
	CONN_AUTH,          /* Hello done, waiting for Login or RegisterUser */
	CONN_READY,         /* logged in */
	CONN_CLOSING,       /* flushing a final frame, then lingering; input discarded */
	CONN_DEAD           /* on the reap list */
};

struct server;
struct srv_user;
struct server_files;

/* A delivery receipt waiting for its connection's flush. */
struct conn_receipt {
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	char to[PROTO_USERNAME_MAX + 1];
	int64_t ts_ms;
};

struct conn {
	TAILQ_ENTRY(conn) entry;       /* server.conns, then server.dead */
	TAILQ_ENTRY(conn) dirty_entry; /* server.dirty while output waits for the flush */
	struct server *srv;
	uint64_t serial; /* unique for the server's lifetime; never reused */
	evutil_socket_t fd;
	SSL *ssl;                       /* during the handshake (and if tlsrec cannot take over) */
	struct tlsrec_secrets *secrets; /* what the key log gives during the handshake */
	struct tlsrec rec;              /* record protection once ssl is gone */
	struct event *rev;              /* readable: persistent unless reads are paused */
	struct event *wev;              /* writable: armed only while the socket is full */
	struct evbuffer *in;            /* plaintext read and not yet framed */
	struct evbuffer *out;           /* frames for the next flush */
	struct evbuffer *raw_in;        /* a record cut short by a read, or NULL */
	struct evbuffer *raw_out;       /* records the socket has not taken yet, or NULL */
	int dirty;                      /* 1 on server.dirty, 2 on server.flushing_now */
	int want_write;                 /* output waits for the socket to take more */
	enum conn_state state;
	struct addr_slot *slot; /* this peer address's counters */
	char peer[64];          /* "[addr]:port", for logs */
	struct event *timer;    /* handshake, login, idle or close deadline */
	uint8_t challenge[PROTO_CHALLENGE_BYTES];
	uint8_t exporter[TLS_EXPORTER_BYTES];
	struct srv_user *user;    /* set once logged in */
	int64_t last_activity_ms; /* monotonic ms of the last non-ping request */
	double tokens;            /* request rate token bucket */
	int64_t tokens_at_ms;
	int live;                  /* queue drained: envelopes are pushed as they arrive */
	int drain_queued;          /* a drain step is scheduled */
	uint64_t drain_seq;        /* highest queue seq pushed to this conn */
	size_t dispatching;        /* nested in readcb: defer frees */
	int read_paused;           /* output over the high-water mark: requests wait */
	size_t stored_out;         /* queue rows pushed to this conn and maybe not yet deleted */
	struct conn_receipt *rcpt; /* live delivery receipts for the next flush (one Delivered) */
	size_t n_rcpt, cap_rcpt;
	int64_t slow_ack_until_ms; /* monotonic: pushes are written without waiting for DeliverAck */
	int lingering;             /* CONN_CLOSING, flushed and write side shut: waiting for EOF */
};

/* A registered user the server has looked at since it started. */
struct srv_user {
	char name[PROTO_USERNAME_MAX + 1];
	int64_t last_seen; /* Unix seconds; 0 never */
	int deleted;
	int admin;
	int blocks_loaded; /* the users this one blocks are in server.blocks */
	size_t n_blocks;   /* how many of them are there */
	struct conn *conn; /* the logged-in connection, or NULL */
	size_t unpushed;   /* pending envelopes for this user not pushed live */
};

/* Per peer address: connection count and login-failure throttle. */
struct addr_slot {
	char key[48];
	uint32_t conns;
	uint32_t failures;
	int64_t window_start; /* monotonic seconds */
};

/* A request whose reply waits for its envelopes to be committed or acknowledged. */
struct pending_req {
	uint64_t conn_serial;
	uint64_t id;
	int multi; /* reply AckMulti rather than Ack */
	int group; /* reply AckGroup for group_id */
	uint8_t group_id[PROTO_GROUP_ID_BYTES];
	size_t outstanding;
	size_t n_acks;
	Sotto__Ack *acks;      /* one per recipient, in request order */
	Sotto__Ack **ack_ptrs; /* for AckMulti.acks */
	char (*names)[PROTO_USERNAME_MAX + 1];
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	/* A group message in flight: its record, and resends answered with it. */
	uint8_t gfp[IDSET_FP_BYTES]; /* of ("", sender, msg_id) */
	int in_flight;               /* in server.group_flight under gfp */
	struct pending_req *resends, *resend_next;
};

/* A resend of a pending envelope: answered when the envelope is. */
struct pending_dup {
	struct pending_dup *next;
	struct pending_req *req;
	size_t ack_index;
};

/*
 * An envelope not yet in the store.  One the recipient took live waits on
 * server.inflight for its DeliverAck, for up to live_wait_ms, and is never
 * written if that comes first; any other waits on server.pending for the next
 * commit.  Either way its sender's Ack waits for one of the two.
 */
struct pending {
	TAILQ_ENTRY(pending) entry; /* server.pending, .inflight or .committing, in arrival order */
	struct pending_req *req;    /* NULL once answered */
	size_t ack_index;
	struct pending_dup *dups;
	struct srv_user *recipient;
	struct srv_user *sender;
	uint8_t msg_id[PROTO_MSG_ID_BYTES];
	uint8_t fp[IDSET_FP_BYTES]; /* of (recipient, sender, msg_id), for the duplicate checks */
	int64_t timestamp_ms;       /* Unix ms, as Deliver shows it */
	int64_t pushed_ms;          /* monotonic ms of the live push */
	uint64_t pushed_serial;     /* conn it was pushed live to, or 0 */
	int group;                  /* a group envelope: sealed is group id[16] || sealed */
	int indexed;                /* in server.pending_idx */
	struct pending *idx_next;   /* the index chain */
	uint64_t idx_hash;
	int inflight; /* on server.inflight (else server.pending or .committing) */
	int pooled;   /* has room for ROUTE_POOL_SEALED bytes: goes back to the pool */
	size_t sealed_len;
	uint8_t sealed[];
};

/*
 * Pending envelopes by (recipient, msg_id), chained through the envelopes
 * themselves: indexing one costs no allocation, and removing it no hashing.
 */
struct pending_index {
	struct pending **bucket;
	size_t nbuckets; /* a power of two */
	size_t count;
	uint8_t sipkey[16];
};

/* Replies that wait for the next commit (DeliverAck with an id). */
struct commit_wait {
	TAILQ_ENTRY(commit_wait) entry;
	uint64_t conn_serial;
	uint64_t id;
};

TAILQ_HEAD(conn_list, conn);
TAILQ_HEAD(pending_list, pending);
TAILQ_HEAD(commit_wait_list, commit_wait);

struct server {
	struct event_base *base;
	struct config *cfg;
	struct store *store;
	SSL_CTX *ssl_ctx;
	struct evconnlistener **listeners;
	size_t n_listeners;
	struct conn_list conns;
	struct conn_list dead;
	struct conn_list dirty;        /* conns with output for the next flush */
	struct conn_list flushing_now; /* those the running flush has yet to write */
	int flushing;
	size_t n_conns;
	uint64_t next_serial;
	struct hmap *users;               /* name -> struct srv_user */
	struct hmap *by_serial;           /* serial -> struct conn */
	struct hmap *addrs;               /* address -> struct addr_slot */
	struct hmap *blocks;              /* "blocker\0blocked" -> (void *)1 */
	struct pending_index pending_idx; /* (recipient, msg_id) -> struct pending */
	struct idring *recent;            /* envelopes acknowledged before they were written */
	struct hmap *group_flight;        /* group messages not yet answered, by gfp */
	struct idbloom *stored;           /* envelopes the store may hold (queued or tombstoned) */
	struct hmap *groups;            /* group id -> struct srv_group (server-group.c's cache) */
	struct pending_list pending;    /* for the next commit */
	struct pending_list inflight;   /* pushed live, waiting for DeliverAck */
	struct pending_list committing; /* written in the transaction being committed */
	size_t pending_bytes;           /* sealed bytes on all three lists */
	struct pending_list pool;       /* freed small envelopes, for the next ones */
	size_t n_pool;
	struct commit_wait_list commit_waits;
	struct event *reap_ev;
	struct event *flush_ev; /* active while server.dirty is not empty */
	struct tlsrec_engine *tlsrec;
	uint8_t *io; /* SERVER_IO_SCRATCH bytes: ciphertext between a socket and tlsrec */
	struct frame_arena arena; /* the frame being handled */
	struct event *commit_ev;
	int64_t commit_at_ms;    /* monotonic ms commit_ev fires at, or 0 when not armed */
	struct event *accept_ev; /* re-enables listeners after EMFILE */
	struct event *prune_ev;
	int accept_paused;
	int commit_all; /* the next commit writes every pending envelope, however young */
	int stopping;
	uint64_t stat_routed;
	struct server_files *files; /* server-file.c: open transfers, the blob directory */

	uint8_t fp_key[IDSET_KEY_BYTES]; /* for the fingerprints in recent and stored */
};

/* A request handler: reply exactly once (or close), return 0 or a negative code. */
typedef int (*server_handler_fn)(struct conn *c, uint64_t id, const Sotto__Frame *f);

#define HANDLER_PREAUTH 0x1 /* allowed before login */
#define HANDLER_NOTIFY  0x2 /* may be sent with id 0 */
#define HANDLER_PASSIVE 0x4 /* does not count as activity for idle_timeout */
#define HANDLER_NOLIMIT 0x8 /* not charged to the rate limit */

struct server_handler {
	Sotto__Frame__BodyCase body;
	int flags;
	server_handler_fn fn;
};

/* Handler tables, each ending with an entry whose fn is NULL. */
extern const struct server_handler server_auth_handlers[];
extern const struct server_handler server_prekey_handlers[];
extern const struct server_handler server_route_handlers[];
extern const struct server_handler server_presence_handlers[];
extern const struct server_handler server_file_handlers[];
extern const struct server_handler server_group_handlers[];

/* server.c */
int server_new(struct server **out, struct event_base *base, struct config *cfg, struct store *st,
        SSL_CTX *ctx, char *err, size_t errlen) SOTTO_WUR;
int server_listen(struct server *srv, char *err, size_t errlen) SOTTO_WUR;
void server_free(struct server *srv);
/* Stop accepting, tell every client, commit, and break the loop once flushed. */
void server_shutdown(struct server *srv, const char *reason);
/* Swap in a new configuration and TLS context (SIGHUP). */
void server_reload(struct server *srv, struct config *cfg, SSL_CTX *ctx);
int64_t server_now(void);    /* Unix seconds */
int64_t server_now_ms(void); /* Unix milliseconds */
int64_t server_mono(void);   /* monotonic seconds */

struct conn *server_conn_by_serial(struct server *srv, uint64_t serial);
/* Queue frame f on c (coalesced with the rest of this loop pass). */
int server_send(struct conn *c, const Sotto__Frame *f);
/* c has output (or receipts) for the flush at the end of this loop pass. */
void server_conn_dirty(struct conn *c);
/* Queue n bytes that are already whole frames (header and all). */
int server_send_packed(struct conn *c, const uint8_t *frames, size_t n);
int server_send_error(
        struct conn *c, uint64_t id, uint32_t code, const char *msg, uint32_t retry_after);
int server_send_ok(struct conn *c, uint64_t id);
/* Send Closing (id 0 unless answering Bye), then close once it is flushed. */
void server_conn_close_with(
        struct conn *c, uint64_t id, uint32_t code, const char *reason, uint32_t retry_after);
/* Close now without a word (broken or hostile peer). */
void server_conn_close(struct conn *c);
/* Move c to a new state (Hello done, logged in) and arm its deadline. */
void server_conn_set_state(struct conn *c, enum conn_state state);
/* Output buffered for c, in bytes. */
size_t server_conn_outlen(const struct conn *c);

/* Begin a store batch if none is open and arm the commit timer. */
int server_batch(struct server *srv) SOTTO_WUR;
/* Make sure a commit runs within delay_ms (without opening a store batch). */
void server_commit_within(struct server *srv, int64_t delay_ms);
/* The same, with the monotonic clock already read: now_ms. */
void server_commit_by(struct server *srv, int64_t now_ms, int64_t delay_ms);
int64_t server_mono_ms(void); /* monotonic milliseconds */
/* Commit the open batch now and answer everything waiting on it. */
void server_commit(struct server *srv);

/* The user record for name (normalized), loading it from the store; NULL if unknown. */
struct srv_user *server_user(struct server *srv, const char *name);
/* 1 if blocker blocks blocked. */
int server_blocks(struct server *srv, struct srv_user *blocker, struct srv_user *blocked);
void server_block_set(struct server *srv, const char *blocker, const char *blocked, int on);

/* server-auth.c: a logged-in conn takes over its user (replacing an older login). */
void server_auth_logged_in(struct conn *c, struct srv_user *u);
/* server-auth.c: check one-time prekeys and copy them to out; 0 or an ErrorCode. */
uint32_t server_auth_check_otks(Sotto__OneTimePrekey *const *in, size_t n, struct store_otk *out);
/* server-auth.c: verify a signed prekey against a DER identity key; 0 or an ErrorCode. */
uint32_t server_auth_check_spk(const Sotto__SignedPrekey *spk, const uint8_t *der, size_t derlen);
/* server-route.c: start or continue pushing c's queue. */
void server_route_drain(struct conn *c);
/* server-route.c: a conn is going away; forget what was pushed to it. */
void server_route_conn_gone(struct conn *c);
/* Send c's waiting delivery receipts as Delivered frames (called by the flush). */
void server_route_flush_receipts(struct conn *c);
/* server-route.c: 1 if envelopes are due for writing (the commit must open a batch). */
int server_route_due(struct server *srv);
/* server-route.c: the commit timer fired; store what is due, in the open batch. */
int server_route_commit(struct server *srv);
/* server-route.c: answer what waited for the commit (committed: it succeeded). */
void server_route_after_commit(struct server *srv, int committed);
/*
 * server-route.c: route one SendGroup to members (n of them, the sender left
 * out), answering AckGroup once each is queued or delivered.
 */
int server_route_send_group(struct conn *c, uint64_t id, const uint8_t msg_id[PROTO_MSG_ID_BYTES],
        const uint8_t group_id[PROTO_GROUP_ID_BYTES], struct srv_user *const *members, size_t n,
        const ProtobufCBinaryData *sealed) SOTTO_WUR;
/* server-group.c: forget every cached group (a batch was lost, or at shutdown). */
void server_group_forget_all(struct server *srv);

/* server-file.c: open the blob directory, drop orphans, start the file_ttl sweep. */
int server_file_init(struct server *srv) SOTTO_WUR;
void server_file_free(struct server *srv);
/* server-file.c: c's output has room: send more of its downloads. */
void server_file_pump(struct conn *c);
/* server-file.c: a conn is going away; close its transfers (partial uploads stay). */
void server_file_conn_gone(struct conn *c);
/* server-route.c: arm the commit timer for the next envelope to fall due. */
void server_route_rearm(struct server *srv);
/* server-route.c: the duplicate-check sets, filled from the store. */
int server_route_init(struct server *srv) SOTTO_WUR;
/* server-route.c: rebuild the filter over the store if it outgrew its size (hourly). */
void server_route_prune(struct server *srv);
/* server-route.c: drop every envelope still in memory (the server is being freed). */
void server_route_free(struct server *srv);

#endif
