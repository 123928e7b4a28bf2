"""Running `kubectl exec`-style commands for real, inside a pod-shaped sandbox.

A pod's filesystem is the host's root, read-only, with the pod's volumes bound at
their mount paths and a private /tmp (bubblewrap does the mounts in a new mount,
pid, ipc and uts namespace). Volumes map to host directories under the fake's DIR:

    persistentVolumeClaim claimName X  -> DIR/volumes/P        X an object bound to PersistentVolume P
                                       -> DIR/volumes/X        X no object (survives pod restarts)
    emptyDir, configMap, secret        -> DIR/pods/<uid>/volumes/<volume name>
    hostPath path P                    -> P itself

Output is streamed as the process writes it; the exit status goes on channel 3
as the kubelet writes it.
"""

import base64
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import termios
import threading

from . import websocket as ws

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 64 * 1024
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SKIP_AT_ROOT = {"proc", "dev", "sys", "tmp", "lost+found"}

# Sub-protocols, most preferred first. v5 adds the close channel (255); v4 puts a JSON
# Status on channel 3; the older ones put only an error text there.
PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
             "channel.k8s.io", "base64.channel.k8s.io"]


def choose_protocol(offered):
    """The apiserver translates v5 itself whenever a client offers it; otherwise the kubelet
    picks the first offered protocol it supports; no offer at all means plain channel.k8s.io."""
    if "v5.channel.k8s.io" in offered:
        return "v5.channel.k8s.io"
    if not offered:
        return ""
    for protocol in offered:
        if protocol in PROTOCOLS:
            return protocol
    return None


class PodFilesystem:
    """Host directories that back pod volumes."""

    def __init__(self, root, claim_volume=None, volume_for_name=None):
        self.root = root
        # (namespace, claim) -> the name under volumes/ (storage.volume_for_claim); identity without a store
        self.claim_volume = claim_volume or (lambda namespace, claim: claim)
        # (name, namespace or None) -> the name under volumes/ for a FILE's "volume" (storage.volume_for_name)
        self.volume_for_name = volume_for_name or (lambda name, namespace=None: name)

    def volume_dir(self, name):
        path = os.path.join(self.root, "volumes", name)
        os.makedirs(path, exist_ok=True)
        return path

    def remove_volume(self, name):
        """A PersistentVolume deleted under reclaimPolicy Delete takes its data with it."""
        if name and "/" not in name and name not in (".", ".."):
            shutil.rmtree(os.path.join(self.root, "volumes", name), ignore_errors=True)

    def empty_volume(self, name):
        """The Recycle reclaim policy's scrub (rm -rf /thevolume/*)."""
        path = self.volume_dir(name)
        for entry in os.listdir(path):
            full = os.path.join(path, entry)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.remove(full)

    def pod_dir(self, uid):
        return os.path.join(self.root, "pods", uid)

    def forget_pod(self, uid):
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    def _materialize(self, uid, volume_name, files):
        """Write a configMap/secret volume's keys as files (like the kubelet's atomic writer, minus ..data)."""
        path = os.path.join(self.pod_dir(uid), "volumes", volume_name)
        os.makedirs(path, exist_ok=True)
        for key, content in files.items():
            with open(os.path.join(path, key), "wb") as f:
                f.write(content)
        return path

    def mounts(self, pod, container, lookup):
        """[(container path, host path, read_only)] for a container; lookup(kind, name) finds ConfigMaps/Secrets."""
        uid = pod["metadata"]["uid"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        result = []
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount.get("name"))
            if volume is None:
                continue
            read_only = bool(mount.get("readOnly"))
            if "persistentVolumeClaim" in volume:
                host = self.volume_dir(self.claim_volume(pod["metadata"]["namespace"],
                                                         volume["persistentVolumeClaim"]["claimName"]))
                read_only = read_only or bool(volume["persistentVolumeClaim"].get("readOnly"))
            elif "emptyDir" in volume:
                host = os.path.join(self.pod_dir(uid), "volumes", volume["name"])
                os.makedirs(host, exist_ok=True)
            elif "hostPath" in volume:
                host = volume["hostPath"]["path"]
            elif "configMap" in volume:
                cm = lookup("configmaps", volume["configMap"]["name"]) or {}
                files = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
                files.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
                host, read_only = self._materialize(uid, volume["name"], files), True
            elif "secret" in volume:
                secret = lookup("secrets", volume["secret"]["secretName"]) or {}
                files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
                host, read_only = self._materialize(uid, volume["name"], files), True
            else:
                continue
            if mount.get("subPath"):
                host = os.path.join(host, mount["subPath"])
                os.makedirs(host, exist_ok=True)
            result.append((os.path.normpath(mount["mountPath"]), host, read_only))
        return sorted(result, key=lambda m: m[0].count("/"))

    def tmp_dir(self, uid):
        path = os.path.join(self.pod_dir(uid), "tmp")
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o1777)
        return path


def _mirror(host_dir, inside_dir, mount_points):
    """bwrap arguments that mirror host_dir read-only at inside_dir, leaving room for mount points.

    A directory that contains a mount point is not bound whole (bwrap would create the
    mount point on the host's real filesystem); it is made a fresh directory in the
    sandbox's tmpfs root and its entries are mirrored one by one.
    """
    args = []
    for entry in sorted(os.listdir(host_dir)):
        host = os.path.join(host_dir, entry)
        inside = os.path.join(inside_dir, entry)
        if inside_dir == "/" and entry in SKIP_AT_ROOT:
            continue
        if any(mp == inside for mp in mount_points):
            continue  # a volume takes this place
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), inside]
        elif os.path.isdir(host) and any(mp.startswith(inside + "/") for mp in mount_points):
            args += ["--dir", inside] + _mirror(host, inside, mount_points)
        elif os.path.isdir(host) or os.path.isfile(host):
            args += ["--ro-bind", host, inside]
    return args


def sandbox_command(argv, mounts, tmp, hostname, cwd):
    """The bwrap command line that runs argv in the pod's filesystem view."""
    points = [mp for mp, _, _ in mounts]
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--hostname", hostname]
    args += _mirror("/", "/", [p for p in points if p != "/tmp" and not p.startswith("/tmp/")])
    args += ["--dev", "/dev", "--proc", "/proc"]
    if "/tmp" not in points:
        args += ["--bind", tmp, "/tmp"]
    for mount_point, host, read_only in mounts:
        args += ["--ro-bind" if read_only else "--bind", host, mount_point]
    args += ["--chdir", cwd or "/", "--"] + list(argv)
    return args


def container_path_to_host(path, mounts, tmp):
    """Where a path inside the container lives on the host (to resolve commands before running them)."""
    for mount_point, host, _ in reversed(mounts):
        if path == mount_point or path.startswith(mount_point + "/"):
            return host + path[len(mount_point):]
    if path == "/tmp" or path.startswith("/tmp/"):
        return tmp + path[4:]
    return path


def find_executable(command, env_path, mounts, tmp, cwd):
    if "/" in command:
        candidates = [command if command.startswith("/") else os.path.join(cwd or "/", command)]
    else:
        candidates = [os.path.join(d, command) for d in env_path.split(":") if d]
    for candidate in candidates:
        host = container_path_to_host(os.path.normpath(candidate), mounts, tmp)
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return candidate
    return None


def bwrap_works():
    try:
        return subprocess.run(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                               "--unshare-pid", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def container_env(pod, container, lookup):
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": pod["metadata"]["name"], "HOME": "/root",
           "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "valueFrom" in item:
            ref = item["valueFrom"]
            if "secretKeyRef" in ref:
                data = (lookup("secrets", ref["secretKeyRef"]["name"]) or {}).get("data") or {}
                if ref["secretKeyRef"]["key"] in data:
                    env[item["name"]] = base64.b64decode(data[ref["secretKeyRef"]["key"]]).decode("utf-8", "replace")
            elif "configMapKeyRef" in ref:
                data = (lookup("configmaps", ref["configMapKeyRef"]["name"]) or {}).get("data") or {}
                if ref["configMapKeyRef"]["key"] in data:
                    env[item["name"]] = data[ref["configMapKeyRef"]["key"]]
    return env


def exit_status(argv, code):
    """The Status the kubelet writes on the error channel when the process exits."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command [%s], exit code %d"
                       % (" ".join(argv), code),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def start_failure_status(command):
    """What containerd/runc report, through the kubelet, when the executable does not exist."""
    cause = ('error executing command in container: failed to exec in container: failed to start exec: '
             'OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": '
             'executable file not found in $PATH: unknown' % command)
    return {"metadata": {}, "status": "Failure", "message": "Internal error occurred: " + cause,
            "reason": "InternalError", "details": {"causes": [{"message": cause}]}, "code": 500}


class ExecSession:
    """One exec stream: a process wired to the WebSocket's channels."""

    def __init__(self, sock, protocol, argv, command_line, env, want, tty, cut_after, registry, log,
                 on_exit=None):
        self.ws = sock
        self.protocol = protocol
        self.base64 = "base64" in protocol
        self.argv = argv                    # what the user asked for (for the status message)
        self.command_line = command_line    # what actually runs (bwrap ...)
        self.env = env
        self.want = want                    # {"stdin": bool, "stdout": bool, "stderr": bool}
        self.tty = tty
        self.cut_after = cut_after          # fault injection: abrupt close after this many stdout bytes
        self.registry = registry            # the server's set of running processes, killed at shutdown
        self.log = log
        self.on_exit = on_exit or (lambda code: None)  # runs before the status is sent
        self.stdout_sent = 0
        self.cut = False
        self.lock = threading.Lock()
        self.process = None
        self.stdin_fd = None

    # ---------------------------------------------------------------- output

    def send(self, channel, data):
        if self.base64:
            self.ws.send_text(chr(ord("0") + channel) + base64.b64encode(data).decode())
        else:
            self.ws.send_binary(bytes([channel]) + data)

    def _send_stdout(self, data):
        """Stdout, honouring an injected cut: exactly cut_after bytes arrive, then the TCP connection drops."""
        if self.cut_after is None:
            self.send(STDOUT, data)
            return True
        with self.lock:
            room = self.cut_after - self.stdout_sent
            if room > 0:
                self.send(STDOUT, data[:room])
                self.stdout_sent += min(room, len(data))
            if self.stdout_sent >= self.cut_after and len(data) >= room:
                self._cut_connection()
                return False
        return True

    def _cut_connection(self):
        if self.cut:
            return
        self.cut = True
        self.log("exec fault: cutting the stream after %d stdout bytes" % self.stdout_sent)
        try:
            self.ws.sock.shutdown(2)  # FIN without TLS close_notify or a WebSocket close frame
        except OSError:
            pass

    def _pump(self, fd, channel):
        try:
            while True:
                try:
                    data = os.read(fd, CHUNK)
                except OSError:  # EIO on a pty when the child exits
                    data = b""
                if not data:
                    return
                if channel == STDOUT:
                    if not self._send_stdout(data):
                        return
                else:
                    self.send(channel, data)
        except (OSError, ws.ConnectionClosed):
            return  # the client is gone; closing our end gives the process SIGPIPE, as on a real node
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- input

    def _close_stdin(self):
        with self.lock:
            if self.stdin_fd is not None:
                try:
                    os.close(self.stdin_fd)
                except OSError:
                    pass
                self.stdin_fd = None

    def _write_stdin(self, data):
        with self.lock:
            fd = self.stdin_fd
        if fd is None:
            return
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError:
            self._close_stdin()

    def _resize(self, data):
        if not self.tty or self.master is None:
            return
        try:
            size = json.loads(data)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", int(size.get("Height", 24)), int(size.get("Width", 80)), 0, 0))
        except (ValueError, OSError, TypeError):
            pass

    def _read_client(self):
        """Client frames: stdin data, resize, v5 close signals; ends when the client closes."""
        try:
            while True:
                opcode, message = self.ws.receive()
                if self.base64:
                    if not message:
                        continue
                    channel, payload = message[0] - ord("0"), base64.b64decode(message[1:])
                else:
                    if not message:
                        continue
                    channel, payload = message[0], message[1:]
                if channel == STDIN and self.want["stdin"]:
                    self._write_stdin(payload)
                elif channel == RESIZE:
                    self._resize(payload)
                elif channel == CLOSE and self.protocol == "v5.channel.k8s.io" and payload[:1] == bytes([STDIN]):
                    self._close_stdin()
        except (ws.ConnectionClosed, OSError, ValueError):
            pass
        finally:
            self._close_stdin()

    # ---------------------------------------------------------------- lifecycle

    def _spawn(self):
        self.master = None
        if self.tty:
            self.master, slave = pty.openpty()
            self.process = subprocess.Popen(self.command_line, stdin=slave, stdout=slave, stderr=slave,
                                            env=self.env, start_new_session=True, close_fds=True)
            os.close(slave)
            self.stdin_fd = os.dup(self.master) if self.want["stdin"] else None
            return [(self.master, STDOUT)]
        self.process = subprocess.Popen(
            self.command_line, env=self.env, start_new_session=True, close_fds=True,
            stdin=subprocess.PIPE if self.want["stdin"] else subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.want["stdout"] else subprocess.DEVNULL,
            stderr=subprocess.PIPE if self.want["stderr"] else subprocess.DEVNULL)
        if self.process.stdin:
            self.stdin_fd = os.dup(self.process.stdin.fileno())
            self.process.stdin.close()
        pipes = []
        if self.process.stdout:
            pipes.append((os.dup(self.process.stdout.fileno()), STDOUT))
            self.process.stdout.close()
        if self.process.stderr:
            pipes.append((os.dup(self.process.stderr.fileno()), STDERR))
            self.process.stderr.close()
        return pipes

    def run(self):
        # Like the kubelet: an empty message on the lowest writable channel says "connected".
        first = STDOUT if self.want["stdout"] else STDERR if self.want["stderr"] and not self.tty else ERROR
        self.send(first, b"")
        pipes = self._spawn()
        self.registry.add(self.process)
        reader = threading.Thread(target=self._read_client, daemon=True)
        reader.start()
        pumps = [threading.Thread(target=self._pump, args=(fd, ch), daemon=True) for fd, ch in pipes]
        for pump in pumps:
            pump.start()
        code = self.process.wait()
        for pump in pumps:
            pump.join()
        self.registry.discard(self.process)
        self._close_stdin()
        self.log("exec %s exited %d" % (self.argv, code))
        if self.cut:
            return code
        try:
            self.finish(code)
        except (OSError, ws.ConnectionClosed):
            pass
        reader.join(timeout=2)
        return code

    def finish(self, code):
        self.on_exit(code)
        status = exit_status(self.argv, code)
        self.send_status(status)
        self.ws.close(ws.CLOSE_NORMAL)

    def send_status(self, status):
        if self.protocol.startswith("v4") or self.protocol.startswith("v5"):
            self.send(ERROR, json.dumps(status, separators=(",", ":")).encode())
        elif status["status"] != "Success":
            self.send(ERROR, status["message"].encode())


def kill_all(processes):
    for process in list(processes):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
