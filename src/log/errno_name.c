/* errno values by name, for log lines an operator can grep. */
#include <errno.h>
#include <stddef.h>

#include "glassproxy/log.h"
#include "glassproxy/util.h"

#define NAME(e)                                                                \
	{                                                                      \
		e, #e                                                          \
	}

static const struct {
	int value;
	const char *name;
} names[] = {
	NAME(EPERM),	    NAME(ENOENT),	 NAME(EINTR),
	NAME(EIO),	    NAME(EBADF),	 NAME(EAGAIN),
	NAME(ENOMEM),	    NAME(EACCES),	 NAME(EFAULT),
	NAME(EBUSY),	    NAME(EEXIST),	 NAME(ENOTDIR),
	NAME(EISDIR),	    NAME(EINVAL),	 NAME(ENFILE),
	NAME(EMFILE),	    NAME(EFBIG),	 NAME(ENOSPC),
	NAME(ESPIPE),	    NAME(EROFS),	 NAME(EPIPE),
	NAME(ERANGE),	    NAME(ENAMETOOLONG),	 NAME(ENOSYS),
	NAME(EPROTO),	    NAME(EMSGSIZE),	 NAME(ENOTSOCK),
	NAME(EADDRINUSE),   NAME(EADDRNOTAVAIL), NAME(ENETDOWN),
	NAME(ENETUNREACH),  NAME(ECONNABORTED),	 NAME(ECONNRESET),
	NAME(ENOBUFS),	    NAME(ENOTCONN),	 NAME(ETIMEDOUT),
	NAME(ECONNREFUSED), NAME(EHOSTDOWN),	 NAME(EHOSTUNREACH),
	NAME(EALREADY),	    NAME(EINPROGRESS),	 NAME(EDQUOT),
	NAME(ECANCELED),
};

const char *log_errno_name(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++)
		if (names[i].value == err)
			return names[i].name;
	return "E?";
}
