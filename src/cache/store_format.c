/*
 * The cache entry's header block: encoding, decoding and its checksum.  Pure
 * byte work, no I/O.  The layout (docs/cache.md, section Store, has the table): an
 * 80-byte fixed part, little-endian integers, then key, variant fields and
 * stored fields, then a CRC-32C of every byte before it.
 */
#include "cache/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* CRC-32C (Castagnoli, reflected 0x82F63B78): iSCSI's and ext4's. */
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t cache_st_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint64_t cache_st_fnv1a(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ull;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t cache_store_variant_id(const void *vary, size_t vary_len)
{
	return cache_st_fnv1a(vary, vary_len);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

size_t cache_st_header_len(size_t key_len, size_t vary_len, size_t fields_len)
{
	size_t max = CACHE_STORE_HEADER_MAX;

	/* Each test keeps the sum below max, so nothing can overflow. */
	if (key_len > max || vary_len > max || fields_len > max)
		return 0;
	if (CS_FIXED_LEN + key_len + vary_len + fields_len + CS_CRC_LEN > max)
		return 0;
	return CS_FIXED_LEN + key_len + vary_len + fields_len + CS_CRC_LEN;
}

void cache_st_header_encode(const struct cache_st_header *h, unsigned char *buf)
{
	unsigned char *p = buf + CS_FIXED_LEN;

	memset(buf, 0, CS_FIXED_LEN);
	memcpy(buf, CS_MAGIC, CS_MAGIC_LEN);
	put32(buf + 8, h->version);
	put32(buf + 12, h->header_len);
	put32(buf + 16, (uint32_t)h->key_len);
	put32(buf + 20, (uint32_t)h->vary_len);
	put32(buf + 24, (uint32_t)h->fields_len);
	buf[28] = (unsigned char)h->meta.status;
	buf[29] = (unsigned char)(h->meta.status >> 8);
	put32(buf + 32, h->meta.flags);
	put64(buf + 40, (uint64_t)h->meta.request_time);
	put64(buf + 48, (uint64_t)h->meta.response_time);
	put64(buf + 56, (uint64_t)h->meta.expires);
	put64(buf + 64, h->body_len);
	put64(buf + 72, h->variant);
	memcpy(p, h->key, h->key_len);
	p += h->key_len;
	memcpy(p, h->vary, h->vary_len);
	p += h->vary_len;
	memcpy(p, h->fields, h->fields_len);
	p += h->fields_len;
	put32(p, cache_st_crc32c(0, buf, h->header_len - CS_CRC_LEN));
}

int cache_st_header_peek(const unsigned char *buf, size_t len,
			 uint32_t *len_out)
{
	uint32_t hlen;

	if (len < CS_FIXED_LEN || memcmp(buf, CS_MAGIC, CS_MAGIC_LEN) != 0)
		return -EBADMSG;
	if (get32(buf + 8) != CS_VERSION)
		return -EPROTO;
	hlen = get32(buf + 12);
	if (hlen < CS_FIXED_LEN + CS_CRC_LEN || hlen > CACHE_STORE_HEADER_MAX)
		return -EBADMSG;
	*len_out = hlen;
	return 0;
}

int cache_st_header_decode(const unsigned char *buf, size_t len,
			   struct cache_st_header *out)
{
	uint32_t hlen;
	int rc = cache_st_header_peek(buf, len, &hlen);

	if (rc < 0)
		return rc;
	if (len < hlen)
		return -EBADMSG;
	if (cache_st_crc32c(0, buf, hlen - CS_CRC_LEN) != get32(buf + hlen - 4))
		return -EBADMSG;
	out->version = CS_VERSION;
	out->header_len = hlen;
	out->key_len = get32(buf + 16);
	out->vary_len = get32(buf + 20);
	out->fields_len = get32(buf + 24);
	/* The checksum vouches for the bytes, the lengths must still add up. */
	if (cache_st_header_len(out->key_len, out->vary_len, out->fields_len) !=
	    hlen)
		return -EBADMSG;
	out->meta.status = (uint16_t)(buf[28] | (buf[29] << 8));
	out->meta.flags = get32(buf + 32);
	out->meta.request_time = (int64_t)get64(buf + 40);
	out->meta.response_time = (int64_t)get64(buf + 48);
	out->meta.expires = (int64_t)get64(buf + 56);
	out->body_len = get64(buf + 64);
	out->variant = get64(buf + 72);
	out->key = (const char *)buf + CS_FIXED_LEN;
	out->vary = out->key + out->key_len;
	out->fields = out->vary + out->vary_len;
	if (out->variant != cache_st_fnv1a(out->vary, out->vary_len))
		return -EBADMSG;
	return 0;
}

void cache_st_header_seal(unsigned char *buf, uint32_t header_len,
			  uint64_t body_len)
{
	put64(buf + 64, body_len);
	put32(buf + header_len - CS_CRC_LEN,
	      cache_st_crc32c(0, buf, header_len - CS_CRC_LEN));
}
