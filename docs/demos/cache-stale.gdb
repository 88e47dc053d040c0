# demo: watch a stored response go stale under a frozen, then an advanced, fault clock
# needs: --fault
# proxy: --serial --cache-dir {tmp}/cache --fault clock.wall.freeze
# client: GET http://{origin}/cached
# client: GET http://{origin}/cached
# client: GET http://{origin}/cached
#
# The origin's 200 has an ETag and no freshness of its own, so the cache
# gives it the 60 s default lifetime (--default-ttl).  The wall clock (HTTP
# dates, cache ages; not the timeouts' monotonic clock) is frozen by the
# fault sys, so the second request finds the entry exactly as old as it was
# stored: fresh, a hit.  Then the demo moves the frozen clock on by two
# minutes, and the third request finds the same entry stale: the cache
# revalidates it with the origin (If-None-Match).
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/cache-stale.gdb --args build/debug/glassproxy --serial \
#       -l 127.0.0.1:8080 --cache-dir /tmp/demo-cache --fault clock.wall.freeze
#   for i in 1 2 3; do curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/cached; done
set pagination off
set confirm off
set disable-randomization off

# The cache's lookup, before any connection is made (true: it answered).
break proxy_cache_before
run

echo \n== request 1: nothing stored yet\n
finish
print x->cache.status.fwd
continue

echo \n== request 2: the same URL, the clock still frozen\n
break cache_decide
continue
echo \n== the decision: age (now - the response's time) against the lifetime\n
bt 3
print now - e->response_time
finish
print c->decision.action
print c->decision.ttl
continue

echo \n== request 3: move the frozen clock on by two minutes\n
print ((struct fault *)cl->px->sys->ctx)->wall.frozen
set var ((struct fault *)cl->px->sys->ctx)->wall.frozen_ns += 120LL * 1000000000
continue
bt 3
print now - e->response_time
finish
print c->decision.action
print c->decision.ttl
echo \n== stale: forwarded as a conditional request (If-None-Match: the ETag)\n
delete
break decide_response
continue
print x->cache.status.fwd
print x->cache.revalidating
print r->res.status
kill
quit
