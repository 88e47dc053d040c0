/* Error codes to HTTP statuses and to words for the body and the log. */
#include "parse_int.h"

int http_error_status(int err)
{
	switch (err) {
	case HTTP_E_URI_TOO_LONG:
		return 414;
	case HTTP_E_HEAD_TOO_LARGE:
	case HTTP_E_TOO_MANY_HEADERS:
		return 431;
	case HTTP_E_TE_UNKNOWN:
		return 501;
	case HTTP_E_VERSION_UNSUPPORTED:
		return 505;
	case HTTP_E_STATUS_LINE:
		return 502;
	case HTTP_INCOMPLETE: /* the client stopped mid-head */
	case HTTP_E_REQUEST_LINE:
	case HTTP_E_METHOD:
	case HTTP_E_TARGET:
	case HTTP_E_VERSION:
	case HTTP_E_HEADER_SYNTAX:
	case HTTP_E_HEADER_VALUE:
	case HTTP_E_SPACE_BEFORE_COLON:
	case HTTP_E_OBS_FOLD:
	case HTTP_E_BARE_CR:
	case HTTP_E_CONTENT_LENGTH:
	case HTTP_E_DUPLICATE_CONTENT_LENGTH:
	case HTTP_E_LENGTH_AND_CHUNKED:
	case HTTP_E_TE_NOT_CHUNKED_LAST:
	case HTTP_E_HOST_MISSING:
	case HTTP_E_HOST_DUPLICATE:
	case HTTP_E_CHUNK_SIZE:
	case HTTP_E_CHUNK_DATA:
	case HTTP_E_CHUNK_TOO_LARGE:
	case HTTP_E_CHUNK_BARE_LF:
	case HTTP_E_TE_HTTP10:
		return 400;
	default:
		/* Not a parse error at all: a bug in the caller. */
		return 500;
	}
}

/* Indexed by -err: every enum http_error has its words here. */
static const char *const reasons[] = {
	[-HTTP_INCOMPLETE] = "incomplete message",
	[-HTTP_E_REQUEST_LINE] = "malformed request line",
	[-HTTP_E_METHOD] = "method is not a token",
	[-HTTP_E_TARGET] = "malformed request target",
	[-HTTP_E_VERSION] = "malformed http version",
	[-HTTP_E_VERSION_UNSUPPORTED] = "http version not supported",
	[-HTTP_E_URI_TOO_LONG] = "request line too long",
	[-HTTP_E_HEAD_TOO_LARGE] = "header section too large",
	[-HTTP_E_TOO_MANY_HEADERS] = "too many header fields",
	[-HTTP_E_HEADER_SYNTAX] = "malformed header field",
	[-HTTP_E_HEADER_VALUE] = "control character in header value",
	[-HTTP_E_SPACE_BEFORE_COLON] = "whitespace before colon",
	[-HTTP_E_OBS_FOLD] = "obs-fold header line",
	[-HTTP_E_BARE_CR] = "cr not followed by lf",
	[-HTTP_E_CONTENT_LENGTH] = "invalid content-length",
	[-HTTP_E_DUPLICATE_CONTENT_LENGTH] =
		"conflicting content-length values",
	[-HTTP_E_LENGTH_AND_CHUNKED] =
		"both content-length and transfer-encoding",
	[-HTTP_E_TE_NOT_CHUNKED_LAST] = "chunked is not the final coding, once",
	[-HTTP_E_TE_UNKNOWN] = "unknown transfer coding",
	[-HTTP_E_HOST_MISSING] = "missing host header",
	[-HTTP_E_HOST_DUPLICATE] = "duplicate host header",
	[-HTTP_E_STATUS_LINE] = "malformed status line",
	[-HTTP_E_CHUNK_SIZE] = "malformed chunk size line",
	[-HTTP_E_CHUNK_DATA] = "chunk data not followed by crlf",
	[-HTTP_E_CHUNK_TOO_LARGE] = "chunk line or trailer section too long",
	[-HTTP_E_CHUNK_BARE_LF] = "lf without cr in chunk framing",
	[-HTTP_E_TE_HTTP10] = "transfer-encoding in an http/1.0 request",
};

const char *http_error_reason(int err)
{
	if (err < 0 && err >= PARSE_E_LOWEST && reasons[-err] != NULL)
		return reasons[-err];
	return "unknown error";
}
