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

const char *http_error_reason(int err)
{
	switch (err) {
	case HTTP_INCOMPLETE:
		return "incomplete message";
	case HTTP_E_REQUEST_LINE:
		return "malformed request line";
	case HTTP_E_METHOD:
		return "method is not a token";
	case HTTP_E_TARGET:
		return "malformed request target";
	case HTTP_E_VERSION:
		return "malformed http version";
	case HTTP_E_VERSION_UNSUPPORTED:
		return "http version not supported";
	case HTTP_E_URI_TOO_LONG:
		return "request line too long";
	case HTTP_E_HEAD_TOO_LARGE:
		return "header section too large";
	case HTTP_E_TOO_MANY_HEADERS:
		return "too many header fields";
	case HTTP_E_HEADER_SYNTAX:
		return "malformed header field";
	case HTTP_E_HEADER_VALUE:
		return "control character in header value";
	case HTTP_E_SPACE_BEFORE_COLON:
		return "whitespace before colon";
	case HTTP_E_OBS_FOLD:
		return "obs-fold header line";
	case HTTP_E_BARE_CR:
		return "cr not followed by lf";
	case HTTP_E_CONTENT_LENGTH:
		return "invalid content-length";
	case HTTP_E_DUPLICATE_CONTENT_LENGTH:
		return "conflicting content-length values";
	case HTTP_E_LENGTH_AND_CHUNKED:
		return "both content-length and transfer-encoding";
	case HTTP_E_TE_NOT_CHUNKED_LAST:
		return "chunked is not the final coding, once";
	case HTTP_E_TE_UNKNOWN:
		return "unknown transfer coding";
	case HTTP_E_HOST_MISSING:
		return "missing host header";
	case HTTP_E_HOST_DUPLICATE:
		return "duplicate host header";
	case HTTP_E_STATUS_LINE:
		return "malformed status line";
	case HTTP_E_CHUNK_SIZE:
		return "malformed chunk size line";
	case HTTP_E_CHUNK_DATA:
		return "chunk data not followed by crlf";
	case HTTP_E_CHUNK_TOO_LARGE:
		return "chunk line or trailer section too long";
	case HTTP_E_CHUNK_BARE_LF:
		return "lf without cr in chunk framing";
	case HTTP_E_TE_HTTP10:
		return "transfer-encoding in an http/1.0 request";
	default:
		return "unknown error";
	}
}
