/*
 * filter internals, shared by the sources in src/filter/ and by
 * tests/test_filter.c (which uses the parsers directly and counts lookup
 * probes).  Not public API.
 *
 * Layout of a built filter:
 *  - rules[]: every accepted pattern, client CIDR, once; index 0 unused so
 *    that 0 can mean "no rule" everywhere.
 *  - a label trie of domain names, labels right to left (com -> example ->
 *    www), whose edges live in ONE open-addressing hash table keyed by
 *    (parent node, label): a lookup costs one probe per host label, whatever
 *    the number of patterns.  A '*' label is an ordinary edge that lookups
 *    also try.  A second root holds single labels: the dotless
 *    ("registrable domain") patterns.
 *  - per list, a set of CIDRs hashed by (prefix length, masked address):
 *    a lookup probes once per distinct prefix length in use.
 *  - the CONNECT and the plain-http port ranges.
 * All IP addresses are 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d,
 * prefix length + 96), so that a v4 rule also catches the v4-mapped IPv6
 * spelling of the same address.
 */
#ifndef GLASSPROXY_FILTER_INT_H
#define GLASSPROXY_FILTER_INT_H

#include "glassproxy/filter.h"

#include <libpsl.h>
#include <stdarg.h>
#include <stdint.h>

#define FILTER_NAME_MAX	  253 /* RFC 1035 text form, without the final dot */
#define FILTER_LABELS_MAX 127
#define FILTER_LABEL_MAX  63

/* The source named by verdicts of rules no list holds (the unspecified
 * addresses). */
#define FILTER_BUILTIN_SOURCE "built-in"

/* Rules of the client ACL live in the same table, in a third "list". */
#define FILTER_LIST_CLIENT 2
#define FILTER_LISTS	   3

enum filter_rule_kind {
	FILTER_RULE_EXACT = 0, /* =example.com */
	FILTER_RULE_TREE = 1,  /* example.com, .example.com: it and below */
	FILTER_RULE_SUB = 2,   /* *.example.com: strictly below */
	FILTER_RULE_LABEL = 3, /* facebook: registrable domain's label */
	FILTER_RULE_CIDR = 4,  /* 10.0.0.0/8, ::1 */
};
#define FILTER_NAME_KINDS 4 /* kinds kept in trie nodes */

/* A lower-cased DNS name split into labels. */
struct filter_name {
	char text[FILTER_NAME_MAX + 1]; /* NUL-terminated, no final dot */
	size_t len;
	unsigned nlabels;
	/* label i (0 = leftmost) starts at off[i]; off[nlabels] = len + 1 */
	uint16_t off[FILTER_LABELS_MAX + 1];
	unsigned nstars; /* '*' labels (patterns only) */
};

static inline const char *filter_label(const struct filter_name *n, unsigned i,
				       size_t *len)
{
	*len = (size_t)(n->off[i + 1] - n->off[i] - 1);
	return n->text + n->off[i];
}

struct filter_cidr {
	uint8_t addr[16]; /* host bits zero */
	unsigned plen;	  /* 0..128, in the IPv4-mapped space */
};

enum filter_host_kind {
	FILTER_HOST_NAME = 0,
	FILTER_HOST_IPV4 = 1,
	FILTER_HOST_IPV6 = 2,
};

struct filter_host {
	enum filter_host_kind kind;
	struct filter_name name; /* FILTER_HOST_NAME */
	uint8_t addr[16];	 /* the IP kinds, IPv4-mapped for IPv4 */
};

struct filter_pattern {
	enum filter_rule_kind kind;
	struct filter_name name; /* the name kinds */
	struct filter_cidr cidr; /* FILTER_RULE_CIDR */
};

struct filter_rule {
	char *pattern;	    /* as written, trimmed; owned */
	const char *source; /* interned in filter.sources */
	unsigned line;
	uint8_t list; /* enum filter_list or FILTER_LIST_CLIENT */
	uint8_t kind; /* enum filter_rule_kind */
	/* Next name rule of the same list whose registrable label is the
	 * same (chain headed in that label's node), for overlap warnings. */
	uint32_t next_same_label;
};

/* Open addressing slot: idx 0 is empty. */
struct filter_slot {
	uint32_t hash;
	uint32_t idx;
};

struct filter_node {
	uint32_t parent, first_child, next_sibling;
	uint32_t label_off; /* in filter_trie.labels */
	uint32_t hash;	    /* of (parent, label) */
	uint8_t label_len;
	uint8_t depth;	  /* labels from the root */
	uint8_t has_star; /* a '*' child: only then do lookups try one */
	/* rule index per list and kind, 0 = none */
	uint32_t rule[2][FILTER_NAME_KINDS];
	/* label nodes only: head of the same-label chain per list */
	uint32_t label_chain[2];
};

#define FILTER_ROOT_NAMES  0
#define FILTER_ROOT_LABELS 1

struct filter_trie {
	struct filter_node *nodes;
	size_t nnodes, cap_nodes;
	char *labels;
	size_t labels_len, cap_labels;
	struct filter_slot *slots;
	size_t cap_slots; /* power of two */
	size_t nstar;	  /* '*' edges: lookups try them only if any */
};

struct filter_cidr_entry {
	struct filter_cidr cidr;
	uint64_t hi, lo; /* the address as two numbers, for fast scans */
	uint32_t rule;
	uint32_t hash;
};

struct filter_cidr_set {
	struct filter_cidr_entry *entries; /* index 0 unused */
	size_t nentries, cap_entries;
	struct filter_slot *slots;
	size_t cap_slots;
	uint32_t len_count[129];
	/* prefix lengths in use, longest first: the lookup order */
	uint8_t lens[129];
	unsigned nlens;
};

struct filter_port_range {
	uint16_t lo, hi;
};

/* The ports one kind of request may go to; empty means "the default". */
struct filter_ports {
	struct filter_port_range *ranges;
	size_t n, cap;
};

struct filter {
	const psl_ctx_t *psl; /* libpsl's built-in list; NULL if none */
	struct filter_rule *rules;
	size_t nrules, cap_rules; /* nrules counts the unused index 0 */
	char **sources;
	size_t nsources, cap_sources;
	struct filter_trie trie;
	struct filter_cidr_set cidrs[FILTER_LISTS];
	size_t count[FILTER_LISTS]; /* patterns per list */
	size_t nlabel_rules[2];	    /* dotless patterns per list */
	struct filter_ports connect_ports; /* CONNECT */
	struct filter_ports http_ports;	   /* plain http:// requests */
	size_t errors;
};

/* Work done by one lookup, for tests and the bench; the filter itself
 * stays untouched, so counting is thread-safe. */
struct filter_stats {
	unsigned long probes;	 /* hash slots inspected */
	unsigned long psl_calls; /* public-suffix queries */
};

/* Reporting context threaded through an add. */
struct filter_ctx {
	struct filter *f;
	const char *source;
	unsigned line;
	filter_report_fn *report;
	void *arg;
};

void filter_diag(struct filter_ctx *c, enum filter_severity sev,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* filter_parse.c: syntax.  why gets a human reason on -EINVAL. */
int filter_parse_host(const char *s, size_t len, struct filter_host *out,
		      char *why, size_t cap);
int filter_parse_pattern(const char *s, size_t len, struct filter_pattern *out,
			 char *why, size_t cap);
int filter_parse_cidr(const char *s, size_t len, struct filter_cidr *out,
		      char *why, size_t cap);
/* WHATWG URL "IPv4 parser": 0x hex, 0 octal, 1-4 parts.  0 or -EINVAL. */
int filter_parse_ipv4_loose(const char *s, size_t len, uint32_t *out);
bool filter_ends_in_number(const char *s, size_t len);
void filter_map_ipv4(uint32_t v4, uint8_t out[16]);
void filter_cidr_mask(uint8_t addr[16], unsigned plen);
/* "10.0.0.0/8", "2001:db8::/32"; a /32 or /128 without the suffix. */
int filter_cidr_format(const struct filter_cidr *c, char *dst, size_t cap);

/* filter_trie.c: domain names. */
int filter_trie_init(struct filter_trie *t);
void filter_trie_free(struct filter_trie *t);
uint32_t filter_trie_child(const struct filter_trie *t, uint32_t parent,
			   const char *label, size_t len, uint32_t lhash,
			   struct filter_stats *st);
uint32_t filter_label_hash(const char *label, size_t len);
int filter_add_name_rule(struct filter_ctx *c, enum filter_list list,
			 const struct filter_pattern *p, const char *written);
/* Best rule per list for a host name, 0 = none. */
void filter_match_name(const struct filter *f, const struct filter_name *h,
		       uint32_t best[2], struct filter_stats *st);
/* Index of the registrable domain's label in n (public suffixes from the
 * ICANN section), -1 if n is a public suffix or has one label. */
int filter_registrable_label(const struct filter *f,
			     const struct filter_name *n,
			     struct filter_stats *st);

/* filter_ip.c: CIDR sets and ports. */
void filter_cidr_set_free(struct filter_cidr_set *s);
int filter_add_cidr_rule(struct filter_ctx *c, unsigned list,
			 const struct filter_cidr *cidr, const char *written);
uint32_t filter_cidr_lookup(const struct filter_cidr_set *s,
			    const uint8_t addr[16], struct filter_stats *st);
int filter_parse_ports(const char *spec, size_t len,
		       struct filter_port_range **out, size_t *n, char *why,
		       size_t cap);

/* filter.c */
int filter_new_rule(struct filter_ctx *c, unsigned list,
		    enum filter_rule_kind kind, const char *written,
		    uint32_t *idx);
/* "source:line" or "source" when line is 0. */
int filter_where(const char *source, unsigned line, char *dst, size_t cap);
enum filter_result filter_check_host_stats(const struct filter *f,
					   const char *host, size_t len,
					   struct filter_verdict *out,
					   struct filter_stats *st);

#endif
