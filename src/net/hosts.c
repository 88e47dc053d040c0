/*
 * The hosts file (/etc/hosts format), consulted before the system resolver,
 * as Squid's hosts_file: labs, demos and tests name hosts offline with it.
 * Parsing is pure; the app layer reads the file and hands us its text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glassproxy/util.h"
#include "net_int.h"

#define HOST_NAME_MAX_LEN 253

struct hosts_entry {
	char name[HOST_NAME_MAX_LEN + 1];
	char addr[64]; /* the literal as written, resolved per lookup */
};

struct net_hosts {
	struct hosts_entry *entries;
	size_t count, cap;
};

static int hosts_add(struct net_hosts *h, const char *name, size_t name_len,
		     const char *addr)
{
	struct hosts_entry *e;

	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct hosts_entry *bigger =
			realloc(h->entries, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		h->entries = bigger;
		h->cap = cap;
	}
	e = &h->entries[h->count];
	if (util_copy(e->name, sizeof(e->name), name, name_len) < 0)
		return 0; /* an over-long name cannot match a valid host */
	for (char *p = e->name; *p; p++)
		*p = util_lower(*p);
	util_copy(e->addr, sizeof(e->addr), addr, strlen(addr));
	h->count++;
	return 0;
}

/* Split off the next whitespace-separated word of [*p, end). */
static size_t next_word(const char **p, const char *end, const char **word)
{
	while (*p < end && (**p == ' ' || **p == '\t'))
		(*p)++;
	*word = *p;
	while (*p < end && **p != ' ' && **p != '\t')
		(*p)++;
	return (size_t)(*p - *word);
}

int net_hosts_parse(const char *text, size_t len, struct net_hosts **out,
		    unsigned *skipped)
{
	struct net_hosts *h = calloc(1, sizeof(*h));
	const char *p = text, *end = text + len;
	unsigned bad = 0;

	if (!h)
		return -ENOMEM;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		const char *hash = memchr(p, '#', (size_t)(line_end - p));
		const char *word, *cursor = p;
		const char *stop = hash ? hash : line_end;
		char addr[64];
		struct sys_addr probe;
		size_t n;

		if (stop > p && stop[-1] == '\r')
			stop--;
		n = next_word(&cursor, stop, &word);
		if (n > 0) {
			if (util_copy(addr, sizeof(addr), word, n) < 0 ||
			    net_addr_from_literal(addr, 0, &probe) < 0) {
				bad++;
			} else {
				while ((n = next_word(&cursor, stop, &word)) >
				       0) {
					if (hosts_add(h, word, n, addr) < 0) {
						net_hosts_free(h);
						return -ENOMEM;
					}
				}
			}
		}
		p = eol ? eol + 1 : end;
	}
	if (skipped)
		*skipped = bad;
	*out = h;
	return 0;
}

void net_hosts_free(struct net_hosts *hosts)
{
	if (!hosts)
		return;
	free(hosts->entries);
	free(hosts);
}

int net_hosts_lookup(const struct net_hosts *hosts, const char *name,
		     uint16_t port, struct sys_addr *out, size_t max)
{
	size_t found = 0, name_len = strlen(name);

	/* One trailing dot names the same host ("example.com."). */
	if (name_len > 0 && name[name_len - 1] == '.')
		name_len--;
	if (!hosts)
		return 0;
	for (size_t i = 0; i < hosts->count && found < max; i++) {
		const struct hosts_entry *e = &hosts->entries[i];
		if (util_ieq(e->name, strlen(e->name), name, name_len) &&
		    net_addr_from_literal(e->addr, port, &out[found]) == 0)
			found++;
	}
	return (int)found;
}
