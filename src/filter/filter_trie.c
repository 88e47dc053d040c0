/*
 * Domain-name rules: a label trie (labels right to left) whose edges live in
 * one open-addressing hash table keyed by (parent, label), plus the dotless
 * "registrable domain" rules under a second root.
 *
 * Why a trie and not a hash of whole suffixes: the same walk that answers
 * "which rule matches this host" (one probe per label) also answers "which
 * rules does this new pattern cover or sit under" (the overlap warnings),
 * and '*' labels become ordinary edges that the walk tries as well.
 */
#include "filter_int.h"

#include "glassproxy/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How many covered rules one insertion names before summing up. */
#define FILTER_OVERLAP_REPORTS 3

uint32_t filter_label_hash(const char *label, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)label[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t edge_hash(uint32_t parent, uint32_t lhash)
{
	uint32_t h = lhash ^ (parent * 0x9e3779b1u);

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	return h;
}

int filter_trie_init(struct filter_trie *t)
{
	memset(t, 0, sizeof(*t));
	t->cap_nodes = 64;
	t->nodes = calloc(t->cap_nodes, sizeof(*t->nodes));
	t->cap_slots = 128;
	t->slots = calloc(t->cap_slots, sizeof(*t->slots));
	t->cap_labels = 1024;
	t->labels = malloc(t->cap_labels);
	if (!t->nodes || !t->slots || !t->labels) {
		filter_trie_free(t);
		return -ENOMEM;
	}
	t->nnodes = 2; /* FILTER_ROOT_NAMES, FILTER_ROOT_LABELS */
	return 0;
}

void filter_trie_free(struct filter_trie *t)
{
	free(t->nodes);
	free(t->slots);
	free(t->labels);
	memset(t, 0, sizeof(*t));
}

static const char *node_label(const struct filter_trie *t,
			      const struct filter_node *n)
{
	return t->labels + n->label_off;
}

uint32_t filter_trie_child(const struct filter_trie *t, uint32_t parent,
			   const char *label, size_t len, uint32_t lhash,
			   struct filter_stats *st)
{
	uint32_t h = edge_hash(parent, lhash);
	size_t mask = t->cap_slots - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct filter_slot *s = &t->slots[i];
		if (st)
			st->probes++;
		if (s->idx == 0)
			return 0;
		if (s->hash != h)
			continue;
		const struct filter_node *n = &t->nodes[s->idx];
		if (n->parent == parent && n->label_len == len &&
		    memcmp(node_label(t, n), label, len) == 0)
			return s->idx;
	}
}

static void slot_put(struct filter_slot *slots, size_t cap, uint32_t hash,
		     uint32_t idx)
{
	size_t mask = cap - 1;
	size_t i = hash & mask;

	while (slots[i].idx != 0)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].idx = idx;
}

/* Keep the load at most one half, so a miss ends after a probe or two. */
static int reserve(struct filter_trie *t, size_t label_len)
{
	if (t->nnodes + 1 > t->cap_nodes) {
		size_t cap = t->cap_nodes * 2;
		struct filter_node *n = realloc(t->nodes, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		t->nodes = n;
		t->cap_nodes = cap;
	}
	if (t->labels_len + label_len > t->cap_labels) {
		size_t cap = t->cap_labels * 2 + label_len;
		char *l = realloc(t->labels, cap);
		if (l == NULL)
			return -ENOMEM;
		t->labels = l;
		t->cap_labels = cap;
	}
	if ((t->nnodes + 1) * 2 > t->cap_slots) {
		size_t cap = t->cap_slots * 2;
		struct filter_slot *s = calloc(cap, sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap_slots; i++)
			if (t->slots[i].idx)
				slot_put(s, cap, t->slots[i].hash,
					 t->slots[i].idx);
		free(t->slots);
		t->slots = s;
		t->cap_slots = cap;
	}
	return 0;
}

static int make_child(struct filter_trie *t, uint32_t parent, const char *label,
		      size_t len, uint32_t *out)
{
	uint32_t lh = filter_label_hash(label, len);
	uint32_t c = filter_trie_child(t, parent, label, len, lh, NULL);

	if (c == 0) {
		if (t->nnodes >= UINT32_MAX || reserve(t, len) < 0)
			return -ENOMEM;
		c = (uint32_t)t->nnodes++;
		struct filter_node *n = &t->nodes[c];
		memset(n, 0, sizeof(*n));
		n->parent = parent;
		n->label_off = (uint32_t)t->labels_len;
		n->label_len = (uint8_t)len;
		n->depth = (uint8_t)(t->nodes[parent].depth + 1);
		n->hash = edge_hash(parent, lh);
		n->next_sibling = t->nodes[parent].first_child;
		t->nodes[parent].first_child = c;
		memcpy(t->labels + t->labels_len, label, len);
		t->labels_len += len;
		slot_put(t->slots, t->cap_slots, n->hash, c);
		if (len == 1 && label[0] == '*') {
			t->nstar++;
			t->nodes[parent].has_star = 1;
		}
	}
	*out = c;
	return 0;
}

/* The node of a name, 0 if the trie has no such path. */
static uint32_t find_path(const struct filter_trie *t,
			  const struct filter_name *n)
{
	uint32_t node = FILTER_ROOT_NAMES;

	/* The root is node 0, so 0 can only mean "no such child" below. */
	for (unsigned i = n->nlabels; i-- > 0;) {
		size_t len;
		const char *l = filter_label(n, i, &len);
		node = filter_trie_child(t, node, l, len,
					 filter_label_hash(l, len), NULL);
		if (node == 0)
			return 0;
	}
	return node;
}

int filter_registrable_label(const struct filter *f,
			     const struct filter_name *n,
			     struct filter_stats *st)
{
	if (f->psl == NULL || n->nlabels < 2)
		return -1;
	/* The longest public suffix is the leftmost suffix the list calls
	 * public (checked suffix by suffix: PSL rules need not nest); the
	 * registrable domain is it plus one label.  Only the ICANN section
	 * counts: see docs/filter.md for why not the private one. */
	for (unsigned j = 0; j < n->nlabels; j++) {
		if (st)
			st->psl_calls++;
		if (psl_is_public_suffix2(f->psl, n->text + n->off[j],
					  PSL_TYPE_ICANN))
			return (int)j - 1;
	}
	return -1;
}

/*
 * A walk of the trie along a name, trying for each label both its own edge
 * and a '*' edge.  A trie node has a fixed depth, so each node is visited at
 * most once: the walk costs at most one visit per trie node, and in practice
 * one or two probes per label.
 */
struct walk {
	const struct filter *f;
	const struct filter_name *name;
	uint32_t lhash[FILTER_LABELS_MAX];
	uint32_t star_hash;
	struct filter_stats *st;
	void (*visit)(struct walk *w, uint32_t node, unsigned depth,
		      unsigned stars);
	/* host matching */
	uint32_t best[2];
	unsigned best_depth[2], best_stars[2];
	int best_rank[2];
	/* overlap checks */
	unsigned list;
	enum filter_rule_kind kind;
	uint32_t own;
	uint32_t found;
};

static void walk_init(struct walk *w, const struct filter *f,
		      const struct filter_name *n, struct filter_stats *st)
{
	w->f = f;
	w->name = n;
	w->st = st;
	w->star_hash = filter_label_hash("*", 1);
	for (unsigned i = 0; i < n->nlabels; i++) {
		size_t len;
		const char *l = filter_label(n, i, &len);
		w->lhash[i] = filter_label_hash(l, len);
	}
	memset(w->best, 0, sizeof(w->best));
	memset(w->best_depth, 0, sizeof(w->best_depth));
	memset(w->best_stars, 0, sizeof(w->best_stars));
	memset(w->best_rank, 0, sizeof(w->best_rank));
	w->visit = NULL;
	w->list = 0;
	w->kind = FILTER_RULE_TREE;
	w->own = 0;
	w->found = 0;
}

static void walk(struct walk *w, uint32_t node, unsigned k, unsigned stars)
{
	const struct filter_trie *t = &w->f->trie;
	unsigned n = w->name->nlabels;
	size_t len;
	const char *label;
	uint32_t c, s = 0;

	if (k > 0)
		w->visit(w, node, k, stars);
	if (k == n)
		return;
	label = filter_label(w->name, n - 1 - k, &len);
	c = filter_trie_child(t, node, label, len, w->lhash[n - 1 - k], w->st);
	if (c)
		walk(w, c, k + 1, stars);
	if (t->nodes[node].has_star)
		s = filter_trie_child(t, node, "*", 1, w->star_hash, w->st);
	if (s && s != c)
		walk(w, s, k + 1, stars + 1);
}

/* The most specific rule decides: deeper beats shallower; at one depth, a
 * path with fewer '*' edges; at one node, the narrower kind (=, *.) beats
 * the tree form. */
static void consider(struct walk *w, unsigned list, uint32_t rule,
		     unsigned depth, unsigned stars, int rank)
{
	if (rule == 0)
		return;
	if (w->best[list]) {
		if (depth != w->best_depth[list]) {
			if (depth < w->best_depth[list])
				return;
		} else if (stars != w->best_stars[list]) {
			if (stars > w->best_stars[list])
				return;
		} else if (rank <= w->best_rank[list]) {
			return;
		}
	}
	w->best[list] = rule;
	w->best_depth[list] = depth;
	w->best_stars[list] = stars;
	w->best_rank[list] = rank;
}

static void visit_match(struct walk *w, uint32_t node, unsigned k,
			unsigned stars)
{
	const struct filter_node *nd = &w->f->trie.nodes[node];

	for (unsigned l = 0; l < 2; l++) {
		if (k == w->name->nlabels)
			consider(w, l, nd->rule[l][FILTER_RULE_EXACT], k, stars,
				 2);
		else
			consider(w, l, nd->rule[l][FILTER_RULE_SUB], k, stars,
				 2);
		consider(w, l, nd->rule[l][FILTER_RULE_TREE], k, stars, 1);
	}
}

static bool is_public(const struct filter *f, const struct filter_name *h,
		      unsigned j, struct filter_stats *st)
{
	if (st)
		st->psl_calls++;
	return psl_is_public_suffix2(f->psl, h->text + h->off[j],
				     PSL_TYPE_ICANN) != 0;
}

/*
 * Dotless rules: the host's registrable domain must start with the label.
 * The PSL is asked only when some host label names such a rule, and then
 * first whether what follows that label is a public suffix at all, which
 * settles most near misses (facebook.evil.net) in one question.
 */
static void match_labels(const struct filter *f, const struct walk *w,
			 uint32_t best[2], struct filter_stats *st)
{
	const struct filter_name *h = w->name;

	for (unsigned i = 0; i < h->nlabels; i++) {
		size_t len;
		const char *l = filter_label(h, i, &len);
		uint32_t c = filter_trie_child(&f->trie, FILTER_ROOT_LABELS, l,
					       len, w->lhash[i], st);
		if (c == 0)
			continue;
		const struct filter_node *nd = &f->trie.nodes[c];
		if (!(best[0] == 0 && nd->rule[0][FILTER_RULE_LABEL]) &&
		    !(best[1] == 0 && nd->rule[1][FILTER_RULE_LABEL]))
			continue;
		/* A single-label host ("localhost") has no registrable
		 * domain; the label names it directly. */
		if (h->nlabels > 1) {
			if (i + 1 == h->nlabels || f->psl == NULL ||
			    !is_public(f, h, i + 1, st))
				continue;
			/* The longest public suffix must start right after
			 * label i: nothing longer may be public (PSL rules
			 * need not nest, so each is asked). */
			bool longer = false;
			for (unsigned j = 0; j <= i && !longer; j++)
				longer = is_public(f, h, j, st);
			if (longer)
				continue;
		}
		for (unsigned l2 = 0; l2 < 2; l2++)
			if (best[l2] == 0)
				best[l2] = nd->rule[l2][FILTER_RULE_LABEL];
		return; /* only one label can be the registrable one */
	}
}

void filter_match_name(const struct filter *f, const struct filter_name *h,
		       uint32_t best[2], struct filter_stats *st)
{
	struct walk w;

	walk_init(&w, f, h, st);
	w.visit = visit_match;
	walk(&w, FILTER_ROOT_NAMES, 0, 0);
	best[0] = w.best[0];
	best[1] = w.best[1];
	/* A domain rule is more specific than a dotless one: it decides. */
	if ((f->nlabel_rules[0] && best[0] == 0) ||
	    (f->nlabel_rules[1] && best[1] == 0))
		match_labels(f, &w, best, st);
}

/* --- overlap warnings ----------------------------------------------------- */

static void warn_covered(struct filter_ctx *c, const char *written, uint32_t by)
{
	const struct filter_rule *r = &c->f->rules[by];
	char where[300];

	filter_where(r->source, r->line, where, sizeof(where));
	filter_diag(c, FILTER_DIAG_WARNING,
		    "'%.100s' is already covered by '%.100s' (%s)", written,
		    r->pattern, where);
}

struct cover_report {
	struct filter_ctx *c;
	const char *written;
	unsigned count;
};

static void warn_covers(struct cover_report *cr, uint32_t rule)
{
	const struct filter_rule *r = &cr->c->f->rules[rule];
	char where[300];

	if (rule == 0)
		return;
	if (cr->count++ >= FILTER_OVERLAP_REPORTS)
		return;
	filter_where(r->source, r->line, where, sizeof(where));
	filter_diag(cr->c, FILTER_DIAG_WARNING,
		    "'%.100s' covers '%.100s' (%s), which is now redundant",
		    cr->written, r->pattern, where);
}

static void cover_summary(struct cover_report *cr)
{
	if (cr->count > FILTER_OVERLAP_REPORTS)
		filter_diag(cr->c, FILTER_DIAG_WARNING,
			    "'%.100s' covers %u more patterns of the list",
			    cr->written, cr->count - FILTER_OVERLAP_REPORTS);
}

/* Is the new pattern (w->kind, w->name) inside an existing rule's set? */
static void visit_covered(struct walk *w, uint32_t node, unsigned k,
			  unsigned stars)
{
	const uint32_t *rule = w->f->trie.nodes[node].rule[w->list];

	(void)stars; /* a '*' path covers as well as a literal one */
	if (w->found)
		return;
	if (k < w->name->nlabels) {
		w->found = rule[FILTER_RULE_TREE] ? rule[FILTER_RULE_TREE]
						  : rule[FILTER_RULE_SUB];
		return;
	}
	/* Same depth: the tree form covers every kind; a reached node other
	 * than our own got here through '*' edges, which cover our labels. */
	if (rule[FILTER_RULE_TREE])
		w->found = rule[FILTER_RULE_TREE];
	else if (node != w->own && w->kind != FILTER_RULE_TREE)
		w->found = rule[w->kind];
}

static void report_subtree(struct cover_report *cr, const struct filter_trie *t,
			   unsigned list, uint32_t node)
{
	for (uint32_t c = t->nodes[node].first_child; c;
	     c = t->nodes[c].next_sibling) {
		for (unsigned k = 0; k < FILTER_RULE_LABEL; k++)
			warn_covers(cr, t->nodes[c].rule[list][k]);
		report_subtree(cr, t, list, c);
	}
}

/* Which existing rules does the new pattern cover?  Follows the new name,
 * where its '*' labels stand for every edge. */
static void walk_covers(struct cover_report *cr, const struct filter_trie *t,
			const struct filter_pattern *p, unsigned list,
			uint32_t own, uint32_t node, unsigned k)
{
	const struct filter_name *n = &p->name;

	if (k == n->nlabels) {
		const uint32_t *rule = t->nodes[node].rule[list];
		switch (p->kind) {
		case FILTER_RULE_TREE:
			for (unsigned i = 0; i < FILTER_RULE_LABEL; i++)
				if (node != own || i != FILTER_RULE_TREE)
					warn_covers(cr, rule[i]);
			report_subtree(cr, t, list, node);
			break;
		case FILTER_RULE_SUB:
			if (node != own)
				warn_covers(cr, rule[FILTER_RULE_SUB]);
			report_subtree(cr, t, list, node);
			break;
		default:
			if (node != own)
				warn_covers(cr, rule[FILTER_RULE_EXACT]);
			break;
		}
		return;
	}
	size_t len;
	const char *l = filter_label(n, n->nlabels - 1 - k, &len);
	if (len == 1 && l[0] == '*') {
		for (uint32_t c = t->nodes[node].first_child; c;
		     c = t->nodes[c].next_sibling)
			walk_covers(cr, t, p, list, own, c, k + 1);
		return;
	}
	uint32_t c = filter_trie_child(t, node, l, len,
				       filter_label_hash(l, len), NULL);
	if (c)
		walk_covers(cr, t, p, list, own, c, k + 1);
}

/* The dotless rule that covers a name rule without '*': its registrable
 * domain starts with that label (or it is "=label" itself). */
static uint32_t label_node_for(const struct filter *f,
			       const struct filter_pattern *p, int *reg)
{
	const struct filter_name *n = &p->name;

	*reg = -1;
	if (n->nstars)
		return 0;
	if (n->nlabels == 1) {
		if (p->kind != FILTER_RULE_EXACT)
			return 0;
		*reg = 0;
	} else {
		*reg = filter_registrable_label(f, n, NULL);
		if (*reg < 0)
			return 0;
	}
	size_t len;
	const char *l = filter_label(n, (unsigned)*reg, &len);
	return filter_trie_child(&f->trie, FILTER_ROOT_LABELS, l, len,
				 filter_label_hash(l, len), NULL);
}

/*
 * "com" or "uk" without a dot is almost surely meant as "every host under
 * .com".  Only country codes and the classic generic TLDs are flagged:
 * brand TLDs (.google, .bbc) are public suffixes too, yet "google" is a
 * perfectly good pattern.
 */
static bool looks_like_tld(const struct filter *f, const char *l, size_t len)
{
	static const char *const generic[] = {"com", "net",  "org", "edu",
					      "gov", "mil",  "int", "info",
					      "biz", "name", "pro"};

	if (!psl_is_public_suffix2(f->psl, l,
				   PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE))
		return false;
	if (len == 2)
		return true;
	for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
		if (strcmp(l, generic[i]) == 0)
			return true;
	return false;
}

static int add_label_rule(struct filter_ctx *c, enum filter_list list,
			  const struct filter_pattern *p, const char *written)
{
	struct filter *f = c->f;
	const char *l = p->name.text;
	size_t len = p->name.len;
	uint32_t node, rule, dup;

	if (f->psl == NULL) {
		filter_diag(
			c, FILTER_DIAG_ERROR,
			"cannot use '%.100s': libpsl has no built-in Public "
			"Suffix List",
			written);
		return -EINVAL;
	}
	node = filter_trie_child(&f->trie, FILTER_ROOT_LABELS, l, len,
				 filter_label_hash(l, len), NULL);
	dup = node ? f->trie.nodes[node].rule[list][FILTER_RULE_LABEL] : 0;
	if (dup) {
		char where[300];
		filter_where(f->rules[dup].source, f->rules[dup].line, where,
			     sizeof(where));
		filter_diag(c, FILTER_DIAG_WARNING,
			    "duplicate pattern '%.100s' (first at %s)", written,
			    where);
		return 0;
	}
	if (looks_like_tld(f, l, len))
		filter_diag(
			c, FILTER_DIAG_WARNING,
			"'%.100s' is a top-level domain; a pattern without "
			"a dot matches registrable domains named '%s' (such "
			"as %s.<suffix>), not every host under .%s: write "
			"'.%s' for that",
			written, l, l, l, l);
	if (node) {
		struct cover_report cr = {c, written, 0};
		for (uint32_t r = f->trie.nodes[node].label_chain[list]; r;
		     r = f->rules[r].next_same_label)
			warn_covers(&cr, r);
		cover_summary(&cr);
	}
	if (filter_new_rule(c, list, FILTER_RULE_LABEL, written, &rule) < 0)
		return -ENOMEM;
	if (make_child(&f->trie, FILTER_ROOT_LABELS, l, len, &node) < 0)
		goto nomem;
	f->trie.nodes[node].rule[list][FILTER_RULE_LABEL] = rule;
	f->nlabel_rules[list]++;
	f->count[list]++;
	return 0;
nomem:
	/* The rule stays in the table unreferenced (freed with the filter);
	 * the error makes the caller drop the whole filter anyway. */
	filter_diag(c, FILTER_DIAG_ERROR, "out of memory adding '%.100s'",
		    written);
	return -ENOMEM;
}

int filter_add_name_rule(struct filter_ctx *c, enum filter_list list,
			 const struct filter_pattern *p, const char *written)
{
	struct filter *f = c->f;
	struct filter_trie *t = &f->trie;
	uint32_t own, node, rule, lnode;
	int reg;

	if (p->kind == FILTER_RULE_LABEL)
		return add_label_rule(c, list, p, written);

	own = find_path(t, &p->name);
	if (own && t->nodes[own].rule[list][p->kind]) {
		const struct filter_rule *r =
			&f->rules[t->nodes[own].rule[list][p->kind]];
		char where[300];
		filter_where(r->source, r->line, where, sizeof(where));
		filter_diag(c, FILTER_DIAG_WARNING,
			    "duplicate pattern '%.100s' (first at %s)", written,
			    where);
		return 0;
	}

	/* Overlaps within this list, both ways.  Harmless for matching (the
	 * most specific rule wins), but usually a sign of a stale entry. */
	struct walk w;
	walk_init(&w, f, &p->name, NULL);
	w.visit = visit_covered;
	w.list = (unsigned)list;
	w.kind = p->kind;
	w.own = own;
	walk(&w, FILTER_ROOT_NAMES, 0, 0);
	lnode = label_node_for(f, p, &reg);
	if (w.found == 0 && lnode)
		w.found = t->nodes[lnode].rule[list][FILTER_RULE_LABEL];
	if (w.found) {
		warn_covered(c, written, w.found);
	} else {
		/* Whatever a covered pattern covers, its cover covers too,
		 * and that was said when the later of the two came. */
		struct cover_report cr = {c, written, 0};
		walk_covers(&cr, t, p, (unsigned)list, own, FILTER_ROOT_NAMES,
			    0);
		cover_summary(&cr);
	}

	if (filter_new_rule(c, list, p->kind, written, &rule) < 0)
		return -ENOMEM;
	node = FILTER_ROOT_NAMES;
	for (unsigned i = p->name.nlabels; i-- > 0;) {
		size_t len;
		const char *l = filter_label(&p->name, i, &len);
		if (make_child(t, node, l, len, &node) < 0)
			goto nomem;
	}
	t->nodes[node].rule[list][p->kind] = rule;
	f->count[list]++;

	/* Remember the rule under its registrable label, so that a later
	 * dotless pattern can say which rules it makes redundant. */
	if (reg >= 0) {
		size_t len;
		const char *l = filter_label(&p->name, (unsigned)reg, &len);
		if (make_child(t, FILTER_ROOT_LABELS, l, len, &lnode) < 0)
			goto nomem;
		f->rules[rule].next_same_label =
			t->nodes[lnode].label_chain[list];
		t->nodes[lnode].label_chain[list] = rule;
	}
	return 0;
nomem:
	filter_diag(c, FILTER_DIAG_ERROR, "out of memory adding '%.100s'",
		    written);
	return -ENOMEM;
}
