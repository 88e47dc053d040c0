# demo: stop where a blocked domain is refused and inspect the rule that decided
# proxy: --serial --block-file fixtures/filter/seed-block.txt --allow-file fixtures/filter/seed-allow.txt
# client: GET http://www.facebook.com/
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/blocked-host.gdb --args build/debug/glassproxy --serial \
#       -l 127.0.0.1:8080 --block-file fixtures/filter/seed-block.txt --allow-file fixtures/filter/seed-allow.txt
#   curl -x http://127.0.0.1:8080 http://www.facebook.com/     (no DNS lookup happens)
set pagination off
set confirm off
set disable-randomization off

# filter_verdict_format is called only for a refusal: the 403's words.
break filter_verdict_format
run

echo \n== who refuses: the call chain\n
bt 3
echo \n== the verdict: result, list, pattern, file and line\n
print v->result
print v->list
print v->pattern
print v->source
print v->line
up
echo \n== the host that was judged (a slice of the request head)\n
print *u->host.ptr@u->host.len
echo \n== no connection was made: the 403 is sent from here\n
break proxy_refuse
continue
bt 2
print o
kill
quit
