"""
The processes `make bench` measures, each started on loopback with its own
configuration, logs and cache in one temporary directory, on a port picked
free at run time, and stopped by PID.

    o = Nginx(tmp)                 the static origin: /1k, /64k, /100m
                                   (cacheable: max-age 3600) and the same
                                   files under /nostore/ (Cache-Control:
                                   no-store); keep-alive on
    p = Glassproxy(tmp, bin, o.port)
    p = Squid(tmp, o.port)         caching on (memory and a ufs cache_dir)
    p = Tinyproxy(tmp, o.port)
    p.port, p.pid, p.pids()        the listening port; the main PID; it and
                                   every descendant (nginx's workers)
    p.stop()                       SIGTERM, then SIGKILL, by PID

Ports of the peers are picked by binding port 0 and closing it just before
the server starts (they cannot report an ephemeral port back); glassproxy
listens on port 0 itself and its ready line names the port.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time

READY = re.compile(rb"glassproxy: listening on (\S+):(\d+)\n")
START_TIMEOUT = 15.0  # seconds a server may take to start listening


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """Every descendant PID of pid (from /proc/*/stat's ppid field)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parent[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _wait_listening(port, proc, what):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited %s before listening" % (what, proc.returncode))
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling for readiness, nothing else
    raise RuntimeError("%s did not listen on %d" % (what, port))


class Server:
    name = "server"

    def _spawn(self, cmd, log):
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid

    def pids(self):
        return [self.pid] + children(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            family = self.pids()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for p in family[1:]:  # a helper that outlived its parent
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.close()


def _user():
    return pwd.getpwuid(os.geteuid()).pw_name


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 16384;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {dir}/www;
        location / {{ expires 1h; }}
        location /nostore/ {{
            alias {dir}/www/;
            add_header Cache-Control no-store;
        }}
    }}
}}
"""

FILES = {"1k": 1024, "64k": 64 * 1024, "100m": 100 * 1024 * 1024}


class Nginx(Server):
    name = "direct"

    def __init__(self, tmp):
        d = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(d, "www"))
        for name, size in FILES.items():
            with open(os.path.join(d, "www", name), "wb") as f:
                block = bytes(range(256)) * 256
                for _ in range(size // len(block)):
                    f.write(block)
                f.write(block[:size % len(block)])
        self.port = free_port()
        # As root the workers would switch to nobody, who cannot read the
        # private temporary directory: keep them as the current user.
        user = "user %s;" % _user() if os.geteuid() == 0 else ""
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, port=self.port, user=user))
        self._spawn(["nginx", "-p", d, "-c", conf], os.path.join(d, "stderr.txt"))
        _wait_listening(self.port, self.proc, "nginx")


class Glassproxy(Server):
    name = "glassproxy"

    def __init__(self, tmp, binary, origin_port):
        d = os.path.join(tmp, "glassproxy")
        os.makedirs(d)
        cmd = [binary, "--listen", "127.0.0.1:0",
               "--log-file", os.path.join(d, "event.log"),
               "--access-log", os.path.join(d, "access.log"),
               "--connect-ports", str(origin_port)]
        help_text = subprocess.run([binary, "--help"], capture_output=True).stdout
        self.cache = b"--cache-dir" in help_text
        if self.cache:  # the cache is wired in: give it a fresh directory
            cmd += ["--cache-dir", os.path.join(d, "cache")]
        stderr = os.path.join(d, "stderr.txt")
        self._spawn(cmd, stderr)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with open(stderr, "rb") as f:
                m = READY.search(f.read())
            if m:
                self.port = int(m.group(2))
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("glassproxy did not start: see " + stderr)
            time.sleep(0.02)  # polling for the ready line


SQUID_CONF = """\
http_port 127.0.0.1:{port}
visible_hostname bench.invalid
acl bench_clients src 127.0.0.1/32
http_access allow bench_clients
http_access deny all
cache_mem 64 MB
maximum_object_size_in_memory 1 MB
maximum_object_size 4 MB
cache_dir ufs {dir}/cache 256 16 256
access_log stdio:{dir}/access.log
cache_log {dir}/cache.log
cache_store_log none
netdb_filename none
pinger_enable off
pid_filename {dir}/squid.pid
coredump_dir {dir}
shutdown_lifetime 1 seconds
max_filedescriptors 16384
client_persistent_connections on
server_persistent_connections on
{user}
"""


class Squid(Server):
    name = "squid"

    def __init__(self, tmp, origin_port):
        d = os.path.join(tmp, "squid")
        os.makedirs(d)
        self.port = free_port()
        # Squid will not run as root: as root it switches to the packaged
        # 'proxy' user, who then must own its directory.
        user = ""
        if os.geteuid() == 0:
            user = "cache_effective_user proxy"
            entry = pwd.getpwnam("proxy")
            shutil.chown(tmp, entry.pw_uid)  # traversable: it is 0700
            os.chmod(tmp, 0o755)
            shutil.chown(d, entry.pw_uid, entry.pw_gid)
        conf = os.path.join(d, "squid.conf")
        with open(conf, "w") as f:
            f.write(SQUID_CONF.format(dir=d, port=self.port, user=user))
        subprocess.run(["squid", "-N", "-z", "-f", conf], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        self._spawn(["squid", "-N", "-f", conf], os.path.join(d, "stderr.txt"))
        _wait_listening(self.port, self.proc, "squid")


TINYPROXY_CONF = """\
Port {port}
Listen 127.0.0.1
Timeout 60
MaxClients 4096
Allow 127.0.0.1
ConnectPort {origin}
LogFile "{dir}/tinyproxy.log"
LogLevel Warning
PidFile "{dir}/tinyproxy.pid"
{user}
"""


class Tinyproxy(Server):
    name = "tinyproxy"

    def __init__(self, tmp, origin_port):
        d = os.path.join(tmp, "tinyproxy")
        os.makedirs(d)
        self.port = free_port()
        user = "User %s" % _user() if os.geteuid() == 0 else ""
        conf = os.path.join(d, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write(TINYPROXY_CONF.format(dir=d, port=self.port,
                                          origin=origin_port, user=user))
        self._spawn(["tinyproxy", "-d", "-c", conf], os.path.join(d, "stderr.txt"))
        _wait_listening(self.port, self.proc, "tinyproxy")
