# demo: follow one GET through parse -> filter -> cache -> net -> the origin's answer
# proxy: --serial -v --cache-dir {tmp}/cache
# client: GET http://{origin}/demo
#
# The cache directory starts empty, so the lookup misses and the request
# takes the forward path (a hit would answer from src/proxy/hit.c and never
# reach net: see the cache-stale demo).
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/follow-request.gdb --args build/debug/glassproxy --serial \
#       --cache-dir /tmp/demo-cache -l 127.0.0.1:8080      (rm -r /tmp/demo-cache first)
#   curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/demo      (any origin)
set pagination off
set confirm off
set print pretty off
set disable-randomization off

# 1. parse: each call is one attempt over the bytes in so far.
break http_parse_request_resume
# 2. filter: the verdict on the host, before any DNS lookup.
break filter_check_host
# 3. cache: the lookup, before any connection (true: the cache answered).
break proxy_cache_before
# 4. net: every address the name resolves to is vetted, then connected.
break net_connect_vetted
# 5. the origin's final response head, where the cache decides to store.
break decide_response
run

echo \n== parse: the request head as it arrived\n
bt 4
finish
echo \n== parse: the parsed request (method, target)\n
print *x->req.method.ptr@x->req.method.len
print *x->req.target.ptr@x->req.target.len
continue

echo \n== filter: the host the filter judges\n
print (int)len
print *host@len
finish
continue

echo \n== cache: the lookup (an empty cache: a miss, so forward)\n
finish
print x->cache.status.fwd
continue

echo \n== net: connecting to the origin\n
bt 4
print host
continue

echo \n== the response head from the origin\n
bt 2
print r->res.status
# the demo ends when the access-log line is written
break log_exchange
continue
echo \n== done: the outcome of the exchange\n
print x->outcome
print x->status
kill
quit
