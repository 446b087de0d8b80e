/*
 * The machine's floor for the latency test: the same paced traffic over the
 * same number of loopback TCP connections, relayed by a plain TCP process that
 * does nothing but move bytes from one connection of a pair to the other. No
 * TLS, no framing, no routing: what is left is the kernel's share and the
 * wakeups, which sottod cannot go below on this machine.
 *
 * A message is four hops, as in sottod's Send -> Deliver -> DeliverAck -> Ack:
 * msg_bytes from the pair's sender through the relay to its receiver, then
 * ack_bytes back the same way. The latency is the first two hops.
 */
#ifndef SOTTO_TCPFLOOR_H
#define SOTTO_TCPFLOOR_H

#include <stddef.h>
#include <stdint.h>

struct tcpfloor_opts {
	size_t pairs;     /* connection pairs: 2 * pairs connections */
	double rate;      /* offered messages per second over all pairs */
	double warm_s;    /* not measured */
	double seconds;   /* measured */
	size_t msg_bytes; /* sender -> receiver */
	size_t ack_bytes; /* receiver -> sender */
	unsigned cap;     /* messages in flight per pair; more are not sent */
	long tick_us;     /* the sender's pacing tick */
};

struct tcpfloor_result {
	double delivered; /* messages per second sent in the window */
	double relay_cpu; /* share of one core */
	double gen_cpu;   /* share of one core */
	double p50_us, p99_us, p999_us, max_us;
};

/* 0, or -1 with a sentence in err. */
int tcpfloor_run(
        const struct tcpfloor_opts *o, struct tcpfloor_result *r, char *err, size_t errlen);

/*
 * The group fan-out's floor: one sender and `members` receivers through a plain
 * TCP relay that copies what the sender wrote to every member in one write
 * each, and answers the sender with an ack once every member has acked.
 */
struct tcpfanout_opts {
	size_t members;
	unsigned window;   /* messages in flight from the sender */
	uint64_t messages; /* per run */
	size_t msg_bytes;  /* relay -> each member */
	size_t ack_bytes;  /* each member -> relay, and relay -> sender */
};

struct tcpfanout_result {
	double deliveries; /* per second */
	double relay_us;   /* relay CPU per delivery */
	double gen_us;     /* generator CPU per delivery */
	double writes;     /* relay writes to members per delivery */
};

int tcpfloor_fanout(
        const struct tcpfanout_opts *o, struct tcpfanout_result *r, char *err, size_t errlen);

#endif
