/* Internals of the net module shared between its files and its tests. */
#ifndef GLASSPROXY_NET_INT_H
#define GLASSPROXY_NET_INT_H

#include <stdbool.h>

#include "glassproxy/net.h"

int net_addr_from_literal(const char *host, uint16_t port,
			  struct sys_addr *out);

#endif
