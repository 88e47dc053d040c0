# demo: follow one GET through parse -> filter -> net -> the origin's answer
# proxy: --serial -v
# client: GET http://{origin}/demo
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/follow-request.gdb --args build/debug/glassproxy --serial -l 127.0.0.1:8080
#   curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/demo      (any origin)
set pagination off
set confirm off
set print pretty off
set disable-randomization off

# 1. parse: each call is one attempt over the bytes in so far.
break http_parse_request_resume
# 2. filter: the verdict on the host, before any DNS lookup.
break filter_check_host
# 3. net: the connection onward (hosts file, resolver, connect).
break net_connect_host
# 4. the origin's final response head, where the cache will decide.
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

echo \n== net: connecting to the origin\n
bt 3
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
