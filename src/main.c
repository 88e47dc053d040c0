/*
 * glassproxy: a caching HTTP/HTTPS forward proxy built as a glass box.
 *
 * Everything lives in the modules; the app module (src/app/app.c) reads the
 * configuration and runs the proxy.  To follow one request in gdb:
 *   make debug && gdb --args build/debug/glassproxy --serial -l 127.0.0.1:0
 *   (gdb) break proxy_forward
 */
#include "glassproxy/app.h"
#include "glassproxy/sys.h"

int main(int argc, char **argv)
{
	return app_main(sys_posix(), argc, argv);
}
