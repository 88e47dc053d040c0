/*
 * Age and freshness (RFC 9111 section 4.2) and the decision whether a
 * stored response may answer a request (sections 4.2.4, 5.2; RFC 5861;
 * RFC 8246).
 */
#include "cache_int.h"

int64_t cache_age_value(const struct http_header *h, size_t n)
{
	struct http_slice v, first;
	size_t pos = 0, len = 0;
	int64_t age;

	/* Section 5.1: the first member of the first line; invalid is
	   ignored.  A parameter after the number (";x") is not ours to
	   judge, so the digits before it count. */
	if (!cache_field(h, n, "Age", &v) || !cache_split_next(v, &pos, &first))
		return 0;
	while (len < first.len && cache_is_digit(first.ptr[len]))
		len++;
	if (len < first.len && first.ptr[len] != ';')
		return 0;
	first.len = len;
	return cache_delta_seconds(first, &age) < 0 ? 0 : age;
}

static int64_t clamp(int64_t v)
{
	if (v < 0)
		return 0;
	return v > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : v;
}

int64_t cache_current_age(const struct cache_age_input *in)
{
	int64_t apparent_age = clamp(in->response_time - in->date_value);
	int64_t response_delay = clamp(in->response_time - in->request_time);
	int64_t corrected_age_value = clamp(in->age_value + response_delay);
	int64_t corrected_initial_age = apparent_age > corrected_age_value
						? apparent_age
						: corrected_age_value;
	int64_t resident_time = clamp(in->now - in->response_time);

	return clamp(corrected_initial_age + resident_time);
}

bool cache_status_heuristic(int status)
{
	static const int statuses[] = {200, 203, 204, 206, 300, 301,
				       308, 404, 405, 410, 414, 501};

	for (size_t i = 0; i < UTIL_ARRAY_LEN(statuses); i++)
		if (statuses[i] == status)
			return true;
	return false;
}

/* Expires - Date; conflicting or invalid Expires means already stale. */
static int64_t expires_lifetime(const struct cache_entry *e, int64_t date)
{
	struct http_slice v;
	int64_t exp = 0, other;
	ssize_t i = http_find_header(e->headers, e->num_headers, "Expires", 0);

	v = e->headers[i].value;
	if (cache_parse_http_date(v.ptr, v.len, date, &exp) < 0)
		return 0;
	while ((i = http_find_header(e->headers, e->num_headers, "Expires",
				     (size_t)i + 1)) >= 0) {
		v = e->headers[i].value;
		if (cache_parse_http_date(v.ptr, v.len, date, &other) < 0 ||
		    other != exp)
			return 0;
	}
	return clamp(exp - date);
}

/* Section 4.2.2: 10 % of the time since Last-Modified, capped. */
static int64_t heuristic_lifetime(const struct cache_entry *e,
				  const struct cache_policy *p, int64_t date)
{
	int64_t lm;

	if (p->default_ttl <= 0)
		return 0;
	if (!cache_entry_date(e, "Last-Modified", date, &lm))
		return p->heuristic_without_lm ? p->default_ttl : 0;
	lm = clamp(date - lm) / 10;
	return lm < p->default_ttl ? lm : p->default_ttl;
}

static int64_t lifetime(const struct cache_entry *e,
			const struct cache_policy *p, struct cache_freshness *f)
{
	const struct cache_control *cc = &f->cc;

	f->heuristic = false;
	/* A shared cache takes s-maxage first (section 5.2.2.10). */
	if (cc->s_maxage >= 0)
		return cc->s_maxage_invalid ? 0 : cc->s_maxage;
	if (cc->max_age >= 0)
		return cc->max_age_invalid ? 0 : cc->max_age;
	if (http_find_header(e->headers, e->num_headers, "Expires", 0) >= 0)
		return expires_lifetime(e, f->date_value);
	if (!cache_status_heuristic(e->status) && !cc->public_)
		return 0;
	f->heuristic = true;
	return heuristic_lifetime(e, p, f->date_value);
}

void cache_freshness(const struct cache_entry *e, const struct cache_policy *p,
		     int64_t now, struct cache_freshness *out)
{
	struct cache_age_input in;

	cache_cc_parse_response(e->headers, e->num_headers, &out->cc);
	/* Section 4.2.3 / RFC 9110 6.6.1: no valid Date, use arrival. */
	if (!cache_entry_date(e, "Date", e->response_time, &out->date_value))
		out->date_value = e->response_time;
	out->lifetime = lifetime(e, p, out);
	in.date_value = out->date_value;
	in.age_value = cache_age_value(e->headers, e->num_headers);
	in.request_time = e->request_time;
	in.response_time = e->response_time;
	in.now = now;
	out->current_age = cache_current_age(&in);
	out->fresh = out->lifetime > out->current_age;
}
