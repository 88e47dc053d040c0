# demo: watch a chunked body decoded into payload and framed anew through a sink
# proxy: --serial --no-cache
# client: GET http://{origin}/chunked
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/body-sink.gdb --args build/debug/glassproxy --serial --no-cache -l 127.0.0.1:8080
#   curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/chunked    (an origin answering chunked)
set pagination off
set confirm off
set disable-randomization off

break proxy_body_relay
run

echo \n== the relay of the response body: how the sender framed it\n
bt 3
print b->kind
delete 1
# every run of payload, whichever sink: no framing byte of the sender in it
break proxy_sink_write
continue
echo \n== the first run of payload reaches the sink\n
bt 3
print len
print *data@len
continue
echo \n== the second run\n
print *data@len
delete
break proxy_sink_finish
continue
echo \n== the end: payload bytes in, bytes on the wire (framing included)\n
print s->payload
print s->wire > s->payload
kill
quit
