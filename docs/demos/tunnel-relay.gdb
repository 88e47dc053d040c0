# demo: inspect a CONNECT tunnel's relay loop: two halves, each pumping one direction
# proxy: --serial --connect-ports {origin_port}
# client: CONNECT {origin}
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/tunnel-relay.gdb --args build/debug/glassproxy --serial \
#       -l 127.0.0.1:8080 --connect-ports 443,9000
#   printf 'CONNECT 127.0.0.1:9000 HTTP/1.1\r\n\r\nping\n' | nc 127.0.0.1 8080   (an echo server on 9000)
set pagination off
set confirm off
set disable-randomization off

break tunnel_run
run

echo \n== the relay starts: who called it\n
bt 4
echo \n== the two halves: client->origin and origin->client\n
print t->half[0].name
print t->half[1].name
print t->half[0].src == t->half[1].dst
echo \n== splice or buffer: each half says how it moves bytes\n
print t->half[0].splicing
# tunnel_run's first line is inside its loop: stop there only once
delete 1
# the first time a half moves bytes it has read from its source
break half_write
continue
echo \n== bytes in flight through one half\n
bt 2
print h->name
print h->pending > 0
delete
# the tunnel's end: its statistics as the access log will show them
break tunnel_report
continue
bt 1
print t->half[0].moved + t->half[1].moved > 0
kill
quit
