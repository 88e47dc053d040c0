# demo: stop at sys_fault_hit and walk up to who handles an injected ECONNRESET
# needs: --fault
# proxy: --serial --fault net.recv[origin]=ECONNRESET@1
# client: GET http://{origin}/reset
#
# Run by hand:   make debug
#   gdb -batch -x docs/demos/fault-reset.gdb --args build/debug/glassproxy --serial \
#       -l 127.0.0.1:8080 --fault 'net.recv[origin]=ECONNRESET@1'
#   curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/   (any origin: the fault is ours)
set pagination off
set confirm off
set disable-randomization off

# Every injected fault passes through this one non-inlined function.
break sys_fault_hit
run

echo \n== the rule that fired\n
print rule->text
print rule->err
echo \n== the call chain: the fault sys, the wrapper, the net layer, the proxy\n
bt 8
echo \n== up to the proxy: the error it got and the outcome it chose\n
delete
break proxy_refuse
continue
bt 3
print o
kill
quit
