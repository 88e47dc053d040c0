/*
 * Address rules: a set of CIDRs hashed by (prefix length, masked address).
 * A lookup masks the address once per prefix length in use, longest first,
 * and stops at the first hit: longest-prefix match in at most 129 probes,
 * usually two or three (lists mix /32s with a few networks).
 */
#include "filter_int.h"

#include "glassproxy/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FILTER_OVERLAP_REPORTS 3

static uint32_t cidr_hash(const uint8_t addr[16], unsigned plen)
{
	uint32_t h = 2166136261u ^ plen;

	for (unsigned i = 0; i < 16; i++) {
		h ^= addr[i];
		h *= 16777619u;
	}
	return h;
}

void filter_cidr_set_free(struct filter_cidr_set *s)
{
	free(s->entries);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

static uint32_t find(const struct filter_cidr_set *s, const uint8_t addr[16],
		     unsigned plen, struct filter_stats *st)
{
	uint32_t h;
	size_t mask;

	if (s->cap_slots == 0)
		return 0;
	h = cidr_hash(addr, plen);
	mask = s->cap_slots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct filter_slot *sl = &s->slots[i];
		if (st)
			st->probes++;
		if (sl->idx == 0)
			return 0;
		const struct filter_cidr_entry *e = &s->entries[sl->idx];
		if (sl->hash == h && e->cidr.plen == plen &&
		    memcmp(e->cidr.addr, addr, 16) == 0)
			return sl->idx;
	}
}

uint32_t filter_cidr_lookup(const struct filter_cidr_set *s,
			    const uint8_t addr[16], struct filter_stats *st)
{
	for (unsigned i = 0; i < s->nlens; i++) {
		uint8_t masked[16];
		memcpy(masked, addr, 16);
		filter_cidr_mask(masked, s->lens[i]);
		uint32_t e = find(s, masked, s->lens[i], st);
		if (e)
			return s->entries[e].rule;
	}
	return 0;
}

static void put(struct filter_slot *slots, size_t cap, uint32_t hash,
		uint32_t idx)
{
	size_t mask = cap - 1;
	size_t i = hash & mask;

	while (slots[i].idx != 0)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].idx = idx;
}

static int reserve(struct filter_cidr_set *s)
{
	if (s->nentries + 1 > s->cap_entries) {
		size_t cap = s->cap_entries ? s->cap_entries * 2 : 16;
		struct filter_cidr_entry *e =
			realloc(s->entries, cap * sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		s->entries = e;
		s->cap_entries = cap;
		if (s->nentries == 0)
			s->nentries = 1; /* index 0 means empty */
	}
	if ((s->nentries + 1) * 2 > s->cap_slots) {
		size_t cap = s->cap_slots ? s->cap_slots * 2 : 32;
		struct filter_slot *sl = calloc(cap, sizeof(*sl));
		if (sl == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap_slots; i++)
			if (s->slots[i].idx)
				put(sl, cap, s->slots[i].hash, s->slots[i].idx);
		free(s->slots);
		s->slots = sl;
		s->cap_slots = cap;
	}
	return 0;
}

static void where_of(const struct filter *f, uint32_t rule, char *dst,
		     size_t cap)
{
	filter_where(f->rules[rule].source, f->rules[rule].line, dst, cap);
}

struct covers {
	struct filter_ctx *c;
	const char *written;
	unsigned count;
};

static void covers_one(struct covers *cv, uint32_t rule)
{
	const struct filter *f = cv->c->f;
	char where[300];

	if (cv->count++ >= FILTER_OVERLAP_REPORTS)
		return;
	where_of(f, rule, where, sizeof(where));
	filter_diag(cv->c, FILTER_DIAG_WARNING,
		    "'%.100s' covers '%.100s' (%s), which is now redundant",
		    cv->written, f->rules[rule].pattern, where);
}

static uint64_t be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* The mask of a prefix length over the hi and lo halves of an address. */
static void mask64(unsigned plen, uint64_t *mhi, uint64_t *mlo)
{
	*mhi = plen >= 64 ? ~0ull : plen == 0 ? 0 : ~0ull << (64 - plen);
	*mlo = plen >= 128 ? ~0ull : plen <= 64 ? 0 : ~0ull << (128 - plen);
}

/* Set address bits [from, from + n) to the low n bits of v. */
static void set_bits(uint8_t a[16], unsigned from, unsigned n, uint32_t v)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned bit = from + i;
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));
		if (v >> (n - 1 - i) & 1)
			a[bit / 8] |= m;
		else
			a[bit / 8] &= (uint8_t)~m;
	}
}

/*
 * Which existing, longer entries does the new network hold?  For each
 * longer prefix length in use, either try every sub-network of that length
 * (when they are much fewer than the entries of that length: a /28 over
 * many thousands of /32s costs 16 probes) or else scan those entries, at
 * about a nanosecond each.  Only building pays for this, never a lookup.
 */
static void report_covered(struct filter_ctx *c,
			   const struct filter_cidr_set *s,
			   const struct filter_cidr *cidr, const char *written)
{
	struct covers cv = {c, written, 0};
	bool scan[129] = {false}, any_scan = false;

	for (unsigned i = 0; i < s->nlens && s->lens[i] > cidr->plen; i++) {
		unsigned len = s->lens[i], bits = len - cidr->plen;
		/* A probe costs some 30 times a scanned entry. */
		if (bits > 16 || (32u << bits) > s->len_count[len]) {
			scan[len] = any_scan = true;
			continue;
		}
		for (uint32_t v = 0; v < (1u << bits); v++) {
			uint8_t a[16];
			memcpy(a, cidr->addr, 16);
			set_bits(a, cidr->plen, bits, v);
			uint32_t e = find(s, a, len, NULL);
			if (e)
				covers_one(&cv, s->entries[e].rule);
		}
	}
	uint64_t mhi, mlo, nhi = be64(cidr->addr), nlo = be64(cidr->addr + 8);
	mask64(cidr->plen, &mhi, &mlo);
	for (size_t i = 1; any_scan && i < s->nentries; i++) {
		const struct filter_cidr_entry *e = &s->entries[i];
		if (scan[e->cidr.plen] && (e->hi & mhi) == nhi &&
		    (e->lo & mlo) == nlo)
			covers_one(&cv, e->rule);
	}
	if (cv.count > FILTER_OVERLAP_REPORTS)
		filter_diag(c, FILTER_DIAG_WARNING,
			    "'%.100s' covers %u more entries of the list",
			    written, cv.count - FILTER_OVERLAP_REPORTS);
}

int filter_add_cidr_rule(struct filter_ctx *c, unsigned list,
			 const struct filter_cidr *cidr, const char *written)
{
	struct filter *f = c->f;
	struct filter_cidr_set *s = &f->cidrs[list];
	char where[300];
	uint32_t e, rule;

	e = find(s, cidr->addr, cidr->plen, NULL);
	if (e) {
		where_of(f, s->entries[e].rule, where, sizeof(where));
		filter_diag(c, FILTER_DIAG_WARNING,
			    "duplicate of '%.100s' (%s)",
			    f->rules[s->entries[e].rule].pattern, where);
		return 0;
	}
	/* Overlaps: the longest existing network holding this one, and up to
	 * a few existing entries this one holds.  The second needs a scan,
	 * but only of entries with longer prefixes, and only at build time. */
	bool covered_by = false;
	for (unsigned i = 0; i < s->nlens && !covered_by; i++) {
		if (s->lens[i] >= cidr->plen)
			continue;
		uint8_t masked[16];
		memcpy(masked, cidr->addr, 16);
		filter_cidr_mask(masked, s->lens[i]);
		e = find(s, masked, s->lens[i], NULL);
		if (e) {
			rule = s->entries[e].rule;
			where_of(f, rule, where, sizeof(where));
			filter_diag(c, FILTER_DIAG_WARNING,
				    "'%.100s' is already covered by '%.100s' "
				    "(%s)",
				    written, f->rules[rule].pattern, where);
			covered_by = true;
		}
	}
	if (!covered_by && s->nlens && s->lens[0] > cidr->plen)
		report_covered(c, s, cidr, written);

	if (filter_new_rule(c, list, FILTER_RULE_CIDR, written, &rule) < 0)
		return -ENOMEM;
	if (reserve(s) < 0) {
		filter_diag(c, FILTER_DIAG_ERROR,
			    "out of memory adding '%.100s'", written);
		return -ENOMEM;
	}
	e = (uint32_t)s->nentries++;
	s->entries[e].cidr = *cidr;
	s->entries[e].hi = be64(cidr->addr);
	s->entries[e].lo = be64(cidr->addr + 8);
	s->entries[e].rule = rule;
	s->entries[e].hash = cidr_hash(cidr->addr, cidr->plen);
	put(s->slots, s->cap_slots, s->entries[e].hash, e);
	if (s->len_count[cidr->plen]++ == 0) {
		/* Insert the new length, keeping the longest first. */
		unsigned i = s->nlens++;
		while (i > 0 && s->lens[i - 1] < cidr->plen) {
			s->lens[i] = s->lens[i - 1];
			i--;
		}
		s->lens[i] = (uint8_t)cidr->plen;
	}
	f->count[list]++;
	return 0;
}
