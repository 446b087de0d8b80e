/*
 * Group fan-out through sottod (make bench), not a pass/fail test.
 *
 * One sender and a group of N members (100 by default) on the sottod built
 * in this tree, at the frame level (loadgen.h): the sender creates the group
 * with a signed CreateGroup, then sends 256-byte opaque sealed blobs with
 * SendGroup, closed loop with a window of requests in flight (8, then 32:
 * a sender that waits on its acks, then a streaming one); every member
 * is logged in and acknowledges each Deliver with DeliverAck (batched per
 * read pass, as a client does); the sender acknowledges the Delivered
 * receipts that come back.  Reported: deliveries per second (one delivery =
 * one member's copy) and server CPU seconds per million deliveries, from
 * utime + stime in /proc/PID/stat before and after each run.  Medians over
 * runs, with min and max.  Each window is then repeated through a plain TCP
 * relay (tcpfloor.h), the floor that the kernel sets on this machine.  Only
 * loopback addresses are used; every loop is bounded by a deadline.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/buf.h"
#include "crypto/util.h"
#include "src/sigmsg.h"
#include "tests/bench/loadgen.h"
#include "tests/bench/tcpfloor.h"

#define PAYLOAD_BYTES 256
#define MAX_RUNS      50
#define NSRC          40 /* source addresses 127.0.0.2 .. 127.0.0.41 */

static struct {
	int runs;
	unsigned members;    /* receivers, the sender not counted */
	unsigned messages;   /* group messages per run */
	unsigned window;     /* SendGroups in flight, in the current pass */
	unsigned windows[4]; /* each measured in turn (--window 8,32) */
	size_t n_windows;
	int verbose;
	const char *server_args[9]; /* extra sottod flags (--server-arg) */
	size_t n_server_args;
} O = {5, 100, 2000, 8, {8, 32, 0, 0}, 2, 0, {NULL}, 0};

struct peer {
	struct lconn c;
	struct lg_acks acks;
};

static struct {
	uint64_t sent, acked, errors, delivered, receipts, quota;
	uint32_t first_error;
	int created, create_failed;
	uint64_t create_id;
	uint64_t salt, next;
	uint8_t group[PROTO_GROUP_ID_BYTES];
	uint8_t payload[PAYLOAD_BYTES];
	struct peer *sender;
} B;

static void
die_signal(int sig)
{
	(void)sig;
	bsrv_kill_all();
	_exit(3);
}

static double
secs_since(int64_t t0)
{
	return (double)(lg_now_ns() - t0) / 1e9;
}

static void
send_one(void)
{
	uint8_t id[PROTO_MSG_ID_BYTES], sealed[PAYLOAD_BYTES];
	uint64_t n = ++B.next;
	Sotto__SendGroup sg;
	Sotto__Frame f;

	memcpy(id, &n, 8);
	memcpy(id + 8, &B.salt, 8);
	memcpy(sealed, B.payload, sizeof(sealed));
	memcpy(sealed, &n, sizeof(n));
	sotto__send_group__init(&sg);
	sg.msg_id = proto_bytes(id, sizeof(id));
	sg.group_id = proto_bytes(B.group, sizeof(B.group));
	sg.sealed = proto_bytes(sealed, sizeof(sealed));
	frame_init(&f, lg_next_id(&B.sender->c));
	f.body_case = SOTTO__FRAME__BODY_SEND_GROUP;
	f.send_group = &sg;
	B.sent++;
	lg_send(&B.sender->c, &f);
}

static void
on_frame(struct lconn *c, const Sotto__Frame *f, int64_t now, void *arg)
{
	struct peer *p = c->app;
	size_t i;

	(void)now;
	(void)arg;
	if (p == NULL)
		return;
	switch (f->body_case) {
	case SOTTO__FRAME__BODY_OK:
		if (f->id == B.create_id)
			B.created = 1;
		break;
	case SOTTO__FRAME__BODY_ERROR:
		if (f->id == B.create_id) {
			B.create_failed = 1;
			B.first_error = f->error->code;
			break;
		}
		if (f->id != 0 && B.errors++ == 0)
			B.first_error = f->error->code;
		if (B.sent < B.quota)
			send_one();
		break;
	case SOTTO__FRAME__BODY_ACK_GROUP:
		B.acked++;
		if (B.sent < B.quota)
			send_one();
		break;
	case SOTTO__FRAME__BODY_DELIVER:
		B.delivered++;
		lg_acks_add(&p->c, &p->acks, &f->deliver->msg_id);
		break;
	case SOTTO__FRAME__BODY_DELIVERED:
		B.receipts += f->delivered->n_receipts;
		for (i = 0; i < f->delivered->n_receipts; i++)
			lg_acks_add(&p->c, &p->acks, &f->delivered->receipts[i]->msg_id);
		break;
	default:
		break;
	}
}

static void
on_read(struct lconn *c, void *arg)
{
	struct peer *p = c->app;

	(void)arg;
	if (p != NULL)
		lg_acks_flush(c, &p->acks);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sender's signed CreateGroup for the members (sorted here). */
static int
create_group(const struct lg_user *owner, const struct lg_user *members, size_t n)
{
	const char **names = calloc(n + 1, sizeof(*names));
	uint8_t sig[IDENTITY_SIG_MAX];
	size_t siglen = 0, i;
	Sotto__CreateGroup cg;
	Sotto__Frame f;
	struct buf m;
	int r = -1;

	if (names == NULL)
		return -1;
	for (i = 0; i < n; i++)
		names[i] = members[i].name;
	qsort(names, n, sizeof(*names), cmp_name);
	sotto_random(B.group, sizeof(B.group));
	buf_init(&m, 0);
	if (sigmsg_group_change(
	            &m, B.group, 1, SOTTO__GROUP_OP__GROUP_OP_CREATE, owner->name, names, n) != 0 ||
	        identity_sign(sig, sizeof(sig), &siglen, owner->id, buf_ptr(&m), buf_len(&m)) != 0)
		goto out;
	sotto__create_group__init(&cg);
	cg.group_id = proto_bytes(B.group, sizeof(B.group));
	cg.members = (char **)(uintptr_t)names;
	cg.n_members = n;
	cg.signature = proto_bytes(sig, siglen);
	frame_init(&f, lg_next_id(&B.sender->c));
	f.body_case = SOTTO__FRAME__BODY_CREATE_GROUP;
	f.create_group = &cg;
	B.create_id = f.id;
	r = lg_send(&B.sender->c, &f);
out:
	buf_free(&m);
	free(names);
	return r;
}

static int
print_stat(
        const char *name, const char *unit, double *v, size_t n, int decimals, const char *target)
{
	struct bstat st;

	if (n == 0)
		return 0;
	bstat_of(&st, v, n);
	printf("  %-44s median %10.*f %-14s (min %.*f, max %.*f; %zu runs)%s%s\n", name, decimals,
	        st.median, unit, decimals, st.min, decimals, st.max, st.n,
	        target != NULL ? "  target " : "", target != NULL ? target : "");
	return 0;
}

/*
 * The same fan-out through a plain TCP relay that only copies bytes and counts
 * acks: the part of the figures that is the kernel's on this machine.
 */
static int
fanout_floor(unsigned window)
{
	struct tcpfanout_opts o = {O.members, window, O.messages, 320, 48};
	double relay[MAX_RUNS], writes[MAX_RUNS], rate[MAX_RUNS];
	struct tcpfanout_result r;
	char err[256];
	int run;

	for (run = 0; run < O.runs; run++) {
		if (tcpfloor_fanout(&o, &r, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_group: plain TCP floor: %s\n", err);
			return -1;
		}
		relay[run] = r.relay_us;
		writes[run] = r.writes;
		rate[run] = r.deliveries;
	}
	printf("  the floor: the same window through a plain TCP relay (no TLS, no framing, "
	       "no store; %zu-byte messages, %zu-byte acks)\n",
	        o.msg_bytes, o.ack_bytes);
	print_stat("  deliveries per second", "deliveries/s", rate, (size_t)O.runs, 0, NULL);
	print_stat("  relay CPU per delivery", "us", relay, (size_t)O.runs, 2, NULL);
	print_stat("  (relay writes per delivery)", "", writes, (size_t)O.runs, 2, NULL);
	fflush(stdout);
	return 0;
}

static const char *const server_flags[] = {"--max_conns_per_addr", "0", "--rate_limit", "1000000",
        "--rate_burst", "1000000", "--auth_throttle", "0", "--handshake_timeout", "300",
        "--auth_timeout", "3600", NULL};

static int
run_until(struct lg *lg, int (*done)(void), double timeout_s)
{
	int64_t t0 = lg_now_ns();

	while (!done()) {
		if (secs_since(t0) > timeout_s || lg->n_failed > 0)
			return -1;
		if (lg_poll(lg, 50) < 0)
			return -1;
	}
	return 0;
}

static int
created_done(void)
{
	return B.created || B.create_failed;
}

static uint64_t want_deliveries, want_receipts;

static int
run_done(void)
{
	return B.acked + B.errors >= B.quota && B.delivered >= want_deliveries &&
	       B.receipts >= want_receipts;
}

int
main(int argc, char **argv)
{
	static double rate[MAX_RUNS], cpu[MAX_RUNS], per[MAX_RUNS], gen[MAX_RUNS];
	struct sigaction sa;
	struct bsrv s;
	struct lg lg;
	struct lg_user *users = NULL;
	struct peer *ps = NULL;
	char name[PROTO_USERNAME_MAX + 1], err[256], target[64];
	const char *flags[32];
	size_t n, i, run, nr = 0, nflags = 0, wi;
	int64_t t0;
	double c0, c1, secs;
	int ret = 1, bad = 0;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "-v") == 0)
			O.verbose = 1;
		else if (strcmp(argv[i], "--quick") == 0) {
			O.runs = 3;
			O.messages = 500;
		} else if (strcmp(argv[i], "--members") == 0 && i + 1 < (size_t)argc)
			O.members = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--messages") == 0 && i + 1 < (size_t)argc)
			O.messages = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--window") == 0 && i + 1 < (size_t)argc) {
			char *w = argv[++i], *end;

			for (O.n_windows = 0; O.n_windows < 4; w = end + 1) {
				O.windows[O.n_windows++] = (unsigned)strtoul(w, &end, 10);
				if (*end != ',')
					break;
			}
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < (size_t)argc)
			O.runs = (int)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--server-arg") == 0 && i + 1 < (size_t)argc &&
		         O.n_server_args < 8)
			O.server_args[O.n_server_args++] = argv[++i];
		else {
			fprintf(stderr, "usage: bench_group [-v] [--quick] [--members N] "
			                "[--messages N] [--window N] [--runs N]\n"
			                "         [--server-arg SOTTOD_ARG]...\n");
			return 2;
		}
	}
	for (i = 0; i < O.n_windows; i++)
		bad |= O.windows[i] < 1 || O.windows[i] > 1000;
	if (bad || O.members < 1 || O.members > 999 || O.messages < 10 || O.runs < 1 ||
	        O.runs > MAX_RUNS) {
		fprintf(stderr,
		        "bench_group: members 1..999, messages >= 10, windows 1..1000 (at most 4, "
		        "by commas), runs 1..%d\n",
		        MAX_RUNS);
		return 2;
	}
	if (sotto_crypto_init() != 0)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = die_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	alarm(900);
	sotto_random(B.payload, sizeof(B.payload));
	sotto_random(&B.salt, sizeof(B.salt));
	lg_zero(&lg);
	n = O.members + 1;
	for (i = 0; server_flags[i] != NULL; i++)
		flags[nflags++] = server_flags[i];
	for (i = 0; i < O.n_server_args; i++)
		flags[nflags++] = O.server_args[i];
	flags[nflags] = NULL;
	if (bsrv_init(&s) != 0 || bsrv_start_sottod(&s, flags) != 0) {
		fprintf(stderr, "bench_group: cannot start sottod\n");
		goto out;
	}
	if ((users = calloc(n, sizeof(*users))) == NULL || (ps = calloc(n, sizeof(*ps))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), i == 0 ? "gsender" : "gm%zu", i - 1);
		if (lg_user_new(&users[i], name) != 0 || lg_acks_init(&ps[i].acks) != 0)
			goto out;
	}
	if (lg_init(&lg, s.port, NSRC, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_group: %s\n", err);
		goto out;
	}
	lg.on_frame = on_frame;
	lg.on_read = on_read;
	for (i = 0; i < n; i++)
		if (lg_connect(&lg, &ps[i].c, LG_GOAL_REGISTER, &users[i]) != 0) {
			fprintf(stderr, "bench_group: %s\n", ps[i].c.err);
			goto out;
		} else
			ps[i].c.app = &ps[i]; /* lg_connect starts c afresh */
	t0 = lg_now_ns();
	for (;;) {
		size_t ready = 0;

		for (i = 0; i < n; i++)
			ready += ps[i].c.state == LC_READY;
		if (ready == n)
			break;
		if (lg.n_failed > 0 || secs_since(t0) > 120) {
			fprintf(stderr, "bench_group: %zu of %zu registered%s%s\n", ready, n,
			        lg.err[0] ? "; " : "", lg.err);
			goto out;
		}
		lg_poll(&lg, 20);
	}
	B.sender = &ps[0];
	if (create_group(&users[0], users + 1, O.members) != 0 ||
	        run_until(&lg, created_done, 30) != 0 || !B.created) {
		fprintf(stderr, "bench_group: CreateGroup failed: %s\n",
		        proto_error_name(B.first_error));
		goto out;
	}
	printf("[group] fan-out of 256-byte SendGroup blobs: 1 sender, %u members online "
	       "(each DeliverAck's), %u messages per run (%llu deliveries)\n",
	        O.members, O.messages, (unsigned long long)O.messages * O.members);
	for (wi = 0; wi < O.n_windows; wi++) {
		O.window = O.windows[wi];
		nr = 0;
		printf(" window %u: the sender keeps %u SendGroups in flight%s\n", O.window,
		        O.window,
		        O.window <= 8 ? " (a sender that waits on its acks)"
		                      : " (a streaming sender)");
		fflush(stdout);
		/* Run 0 warms up and is not counted. */
		for (run = 0; run <= (size_t)O.runs; run++) {
			struct timespec ts = {0, 100 * 1000 * 1000};
			double g0, g1;
			struct timespec cpu0, cpu1;

			B.sent = B.acked = B.errors = B.delivered = B.receipts = 0;
			B.quota = run == 0 ? O.messages / 4 + 1 : O.messages;
			want_deliveries = B.quota * O.members;
			want_receipts = want_deliveries;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
			c0 = proc_cpu_seconds(s.pid);
			t0 = lg_now_ns();
			for (i = 0; i < O.window && B.sent < B.quota; i++)
				send_one();
			if (run_until(&lg, run_done, 300) != 0) {
				fprintf(stderr,
				        "bench_group: run incomplete: %llu of %llu acked, %llu of "
				        "%llu "
				        "delivered, %llu receipts%s%s\n",
				        (unsigned long long)B.acked, (unsigned long long)B.quota,
				        (unsigned long long)B.delivered,
				        (unsigned long long)want_deliveries,
				        (unsigned long long)B.receipts, lg.err[0] ? "; " : "",
				        lg.err);
				goto out;
			}
			secs = secs_since(t0);
			c1 = proc_cpu_seconds(s.pid);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
			g0 = (double)cpu0.tv_sec + (double)cpu0.tv_nsec / 1e9;
			g1 = (double)cpu1.tv_sec + (double)cpu1.tv_nsec / 1e9;
			if (B.errors > 0) {
				fprintf(stderr, "bench_group: %llu errors (first %s)\n",
				        (unsigned long long)B.errors,
				        proto_error_name(B.first_error));
				goto out;
			}
			if (run > 0) {
				rate[nr] = (double)B.delivered / secs;
				cpu[nr] = (c1 - c0) / (double)B.delivered * 1e6;
				per[nr] = (c1 - c0) / (double)B.delivered * 1e6;
				gen[nr] = (g1 - g0) / (double)B.delivered * 1e6;
				nr++;
			}
			if (O.verbose)
				fprintf(stderr, "bench_group: run %zu: %.0f deliveries/s\n", run,
				        (double)B.delivered / secs);
			nanosleep(&ts, NULL);
			lg_poll(&lg, 0);
		}
		snprintf(target, sizeof(target), "<= 3.15 s (mosquitto ~6.3 s)");
		print_stat("deliveries per second", "deliveries/s", rate, nr, 0, NULL);
		print_stat("server CPU per 1M deliveries", "s", cpu, nr, 2, target);
		print_stat("(that is, per delivery)", "us", per, nr, 2, NULL);
		print_stat("(generator CPU per 1M deliveries)", "s", gen, nr, 2, NULL);
		if (fanout_floor(O.window) != 0)
			goto out;
	}
	ret = 0;
out:
	fflush(stdout);
	for (i = 0; ps != NULL && i < n; i++) {
		lg_conn_free(&ps[i].c);
		lg_acks_free(&ps[i].acks);
	}
	for (i = 0; users != NULL && i < n; i++)
		lg_user_free(&users[i]);
	free(ps);
	free(users);
	lg_free(&lg);
	bsrv_cleanup(&s);
	return ret;
}
