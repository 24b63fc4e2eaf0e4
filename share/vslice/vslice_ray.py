#!/usr/bin/env python3
"""vslice's Ray driver: runs a task's elements (video segments, audio pieces) on a Ray cluster.

The vslice coordinator (Swift) starts this file with the Python that has Ray (VSLICE_RAY_PYTHON). It never runs
media work: every element runs in an actor's one `vslice segment --work-dir DIR --serve` process (an index per
line on its stdin), the same worker contract Slurm elements run (the work order task.json, the input's fingerprint check, a sealed segment file, a trace record beside it).

In the cluster, per task, in the namespace `vslice-TASK`:
  queue       one detached actor (no CPU, on the head node) holding the indices to run, which worker runs
              which index (its node, its attempt), and the workers' heartbeats;
  worker-N    detached actors, at most --jobs of them, each asking num_cpus = --threads (num_gpus = 1 with
              --gpus); Ray places them. Each keeps one `vslice segment --serve` process, takes the next index
              from the queue, feeds it to that process, takes the next, and ends when the queue is empty.
Nothing restarts on its own: actors have max_restarts=0 and no call is retried. A worker that dies (its node,
an OOM kill) stops beating; the queue forgets its element after BEAT_TIMEOUT seconds; the coordinator, seeing the
element held by no one and no trace record, records the attempt lost and submits the index again, which tops
the pool up to --jobs workers. The queue ends itself (and any worker left) once it has been idle IDLE_EXIT s.

Commands (one JSON object on stdout; exit 0 when it says "ok": true):
  version                                  this driver's protocol version (no Ray needed)
  check    --address A                     connects; Ray's version, the nodes alive, CPUs, GPUs
  submit   --address A  (spec JSON on stdin)  queues indices, tops the pool up
  inflight --address A --namespace NS      what the task's queue holds: queued indices, running ones
  nodes    --address A [--node ID]...      the named nodes' trouble, if any
  cancel   --address A --namespace NS      stops the workers (their `vslice segment` gets SIGTERM) and the queue
  serve    --address A                     the same requests, one JSON line each on stdin, answers on stdout
Ray's own output goes to stderr.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid

# The protocol between vslice and this file; vslice refuses a driver of another version.
VERSION = 2

# Seconds without a heartbeat after which a worker counts as dead and its element as no longer held.
BEAT_TIMEOUT = 10.0
# Seconds a queue with nothing queued, nothing running and no live worker waits before it ends itself.
IDLE_EXIT = 30.0
# Seconds a worker's `vslice segment` has to end after SIGTERM (it writes its own interrupted record).
STOP_GRACE = 20.0


def namespace_of(task):
    return "vslice-" + task


# ----------------------------------------------------------------------------------------------------------------
# In the cluster: the element runner, the worker actor, the queue actor. Plain classes, made Ray actors in
# `actor_classes` (Ray is imported only by commands that connect).

class SegmentProcess:
    """The actor's one `vslice segment --serve` process, kept for all its elements: each element is a line
    "INDEX ATTEMPT" on its stdin, answered by a line "INDEX EXIT_CODE" on its stdout, so that the process start is
    paid once per actor and a --process-persistent program stays loaded across the actor's elements. It runs in
    its own session, dies with this actor's process, and writes its log to ray-worker-NAME.out. A process that
    died (no answer) is started again for the next element; the element it held gets its exit code."""

    def __init__(self, spec):
        self.vslice = spec["vslice"]
        self.work_dir = spec["work_dir"]
        self.env = dict(spec.get("env") or {})
        self.cpus = spec.get("num_cpus") or 1
        self.lock = threading.Lock()
        self.proc = None

    def _start(self, identity):
        env = dict(os.environ)
        env.update(self.env)
        env.update({
            "VSLICE_RAY_NODE_ID": identity["node"],
            "VSLICE_RAY_NODE_IP": identity["ip"],
            "VSLICE_RAY_ACTOR": identity["name"],
            "VSLICE_RAY_CPUS": str(int(self.cpus)),
        })
        import subprocess
        log = open(os.path.join(self.work_dir, "ray-%s.out" % identity["name"]), "ab")
        try:
            self.proc = subprocess.Popen(
                [self.vslice, "segment", "--work-dir", self.work_dir, "--serve", "-q"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                start_new_session=True, preexec_fn=_child_setup)
        finally:
            log.close()

    def run(self, index, attempt, identity):
        log_path = os.path.join(self.work_dir, "ray-%05d.out" % index)
        with open(log_path, "ab") as log:
            log.write(("== attempt %s of element %d on node %s (%s, %s), actor %s, %s\n" % (
                attempt, index, identity["node"], identity["ip"], identity["host"], identity["name"],
                time.strftime("%Y-%m-%dT%H:%M:%S"))).encode())
            with self.lock:
                try:
                    if self.proc is None or self.proc.poll() is not None:
                        self._start(identity)
                except OSError as e:
                    # No record: the coordinator calls the attempt lost; the reason is in the element's log.
                    log.write(("could not start %s: %s\n" % (self.vslice, e)).encode())
                    return 127
                proc = self.proc
        try:
            proc.stdin.write(("%d %s\n" % (index, attempt)).encode())
            proc.stdin.flush()
            line = proc.stdout.readline().split()
        except (OSError, ValueError):
            line = []
        if len(line) == 2 and line[0] == str(index).encode():
            return int(line[1])
        code = proc.wait()
        with self.lock:
            if self.proc is proc:
                self.proc = None
        return code or 1

    def terminate(self, grace):
        """SIGTERM to the process group (the running element writes its interrupted record), SIGKILL after
        `grace` seconds."""
        with self.lock:
            proc = self.proc
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except Exception:
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except Exception:
                pass

    def close(self, grace=10):
        """Ends the process once the actor has no more elements: its stdin closed, it exits on its own."""
        with self.lock:
            proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=grace)
        except Exception:
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except OSError:
        pass


_PR_SET_PDEATHSIG = 1


def _end_actor():
    """Ends this actor from one of its own threads (its name is free again once Ray has it dead)."""
    import ray
    try:
        ray.actor.exit_actor()
    except BaseException:
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


def _child_setup():
    """In the element's process before exec: every signal unblocked (the actor's threads block some, and a
    child inherits the mask), and SIGTERM when the actor's process dies (a `ray.kill`, an OOM kill), so that
    no element outlives its worker unseen."""
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    except Exception:
        pass
    try:
        import ctypes
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except Exception:
        pass


class WorkerActor:
    """One job slot: takes an index from the queue, runs it, reports it, takes the next; ends when the queue is
    empty (or closed). Beats every second so that the queue knows it is alive."""

    def __init__(self, namespace, name, spec):
        import ray
        self.namespace = namespace
        self.name = name
        self.runner = SegmentProcess(spec)
        self.stopping = threading.Event()
        self.current = (None, None)
        ctx = ray.get_runtime_context()
        self.identity = {"node": ctx.get_node_id(), "ip": ray.util.get_node_ip_address(),
                         "host": socket.gethostname(), "name": name}
        self.queue = ray.get_actor("queue", namespace=namespace)
        threading.Thread(target=self._beat, daemon=True).start()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        import ray
        try:
            while not self.stopping.is_set():
                item = ray.get(self.queue.take.remote(self.name, self.identity), timeout=60)
                if item is None:
                    break
                index, attempt = item
                self.current = (index, attempt)
                code = self.runner.run(index, attempt, self.identity)
                self.current = (None, None)
                ray.get(self.queue.finished.remote(self.name, index, attempt, code), timeout=60)
        except Exception as e:  # the queue is gone (cancelled) or unreachable: this worker ends
            print("vslice ray worker %s: %s: %s" % (self.name, type(e).__name__, e), file=sys.stderr, flush=True)
        if not self.stopping.is_set():
            self.runner.close()
        if self.stopping.is_set():
            return  # `stop` was called: the canceller kills this actor
        try:
            ray.get(self.queue.leave.remote(self.name), timeout=10)
        except Exception:
            pass
        _end_actor()

    def _beat(self):
        while not self.stopping.is_set():
            try:
                self.queue.beat.remote(self.name, self.current[0], self.current[1])
            except Exception:
                pass
            time.sleep(1)

    def stop(self):
        """Stops taking elements and ends the running one (SIGTERM; it writes its own interrupted record)."""
        self.stopping.set()
        self.runner.terminate(STOP_GRACE)
        return self.identity["node"]

    def ping(self):
        return self.identity


class QueueActor:
    """The task's elements to run and who runs them. Every method is quick; a monitor thread drops the workers
    whose beats stopped (and with them the element each held) and ends the queue once idle."""

    def __init__(self, namespace):
        self.namespace = namespace
        self.lock = threading.Lock()
        self.pending = []
        self.running = {}
        self.workers = {}
        self.closed = False
        # Set once the queue has decided to end (idle): it takes nothing more, the driver makes a new one.
        self.ending = False
        self.sequence = 0
        self.idle_since = time.time()
        threading.Thread(target=self._monitor, daemon=True).start()

    def enqueue(self, indices, parallel):
        """Queues the indices not queued or running already; returns the names of the workers to create so that
        up to `parallel` work on them (registered now: counted from here on)."""
        with self.lock:
            if self.ending:
                return {"ending": True}
            self.closed = False
            added = [i for i in indices if i not in self.running and i not in self.pending]
            self.pending.extend(added)
            want = min(parallel, len(self.pending) + len(self.running))
            names = []
            for _ in range(max(0, want - len(self.workers))):
                self.sequence += 1
                name = "worker-%d" % self.sequence
                self.workers[name] = {"registered": time.time(), "beat": None, "identity": None}
                names.append(name)
            self.idle_since = time.time()
            return {"added": added, "create": names}

    def take(self, name, identity):
        with self.lock:
            w = self.workers.setdefault(name, {"registered": time.time(), "beat": None, "identity": None})
            w["beat"] = time.time()
            w["identity"] = identity
            if self.closed or not self.pending:
                self.workers.pop(name, None)
                return None
            index = self.pending.pop(0)
            attempt = uuid.uuid4().hex[:12]
            self.running[index] = dict(identity, attempt=attempt, since=time.time())
            return [index, attempt]

    def beat(self, name, index, attempt):
        with self.lock:
            w = self.workers.get(name)
            if w is not None:
                w["beat"] = time.time()

    def finished(self, name, index, attempt, code):
        with self.lock:
            r = self.running.get(index)
            if r is not None and r["attempt"] == attempt:
                del self.running[index]
            self.idle_since = time.time()

    def leave(self, name):
        with self.lock:
            self.workers.pop(name, None)
            self._forget(name)

    def _forget(self, name):
        """The elements a worker that is gone held (caller holds the lock)."""
        for i, r in list(self.running.items()):
            if r["name"] == name:
                del self.running[i]

    def close(self):
        """No more elements start; returns the workers' names."""
        with self.lock:
            self.closed = True
            self.pending = []
            return list(self.workers)

    def snapshot(self):
        with self.lock:
            return {"queued": list(self.pending),
                    "running": {str(i): r for i, r in self.running.items()},
                    "workers": {n: {"identity": w["identity"], "beat_age": None if w["beat"] is None else time.time() - w["beat"]}
                                for n, w in self.workers.items()}}

    def _monitor(self):
        while True:
            time.sleep(1)
            try:
                self._look()
            except Exception as e:  # a look that failed is tried again; the thread must not end
                print("vslice ray queue: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)

    def _look(self):
        import ray
        now = time.time()
        check = []
        with self.lock:
            for name, w in list(self.workers.items()):
                if w["beat"] is not None and now - w["beat"] > BEAT_TIMEOUT:
                    del self.workers[name]
                    self._forget(name)
                elif w["beat"] is None and now - w["registered"] > 10:
                    check.append(name)
        # A worker that never beat: gone if Ray no longer knows its name (its creation failed).
        for name in check:
            try:
                ray.get_actor(name, namespace=self.namespace)
            except ValueError:
                with self.lock:
                    self.workers.pop(name, None)
            except Exception:
                pass
        with self.lock:
            busy = bool(self.pending or self.running or any(w["beat"] is not None for w in self.workers.values()))
            if busy:
                self.idle_since = now
            # An element whose worker is no longer known (it left, it was dropped) is held by no one.
            for i, r in list(self.running.items()):
                if r["name"] not in self.workers:
                    del self.running[i]
            idle = now - self.idle_since > IDLE_EXIT
            self.ending = idle
            left = list(self.workers) if idle else []
        if idle:
            for name in left:  # workers Ray never placed
                try:
                    ray.kill(ray.get_actor(name, namespace=self.namespace), no_restart=True)
                except Exception:
                    pass
            _end_actor()


def actor_classes():
    import ray
    queue = ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=16)(QueueActor)
    worker = ray.remote(max_restarts=0, max_task_retries=0, max_concurrency=4)(WorkerActor)
    return queue, worker


# ----------------------------------------------------------------------------------------------------------------
# In the driver: the requests.

class Driver:
    def __init__(self, address):
        self.address = address
        self.queue_class = None
        self.worker_class = None

    def connect(self):
        import ray
        if ray.is_initialized():
            return
        reachable(self.address)
        ray.init(address=self.address, namespace="vslice", logging_level="ERROR", log_to_driver=False)
        self.queue_class, self.worker_class = actor_classes()

    def check(self, request):
        try:
            import ray
        except ImportError as e:
            raise SetupError("%s (%s)" % (e, sys.executable))
        self.connect()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = [n.get("Resources", {}).get("CPU", 0) for n in nodes]
        gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
        return {"version": VERSION, "ray": ray.__version__, "nodes": len(nodes), "cpus": sum(cpus), "max_node_cpus": max(cpus or [0]),
                "gpus": gpus, "python": sys.version.split()[0]}

    def _queue(self, namespace, create):
        import ray
        if not create:
            try:
                return ray.get_actor("queue", namespace=namespace)
            except ValueError:
                return None
        return self.queue_class.options(
            name="queue", namespace=namespace, lifetime="detached", get_if_exists=True, num_cpus=0,
            resources={"node:__internal_head__": 0.001}).remote(namespace)

    def submit(self, request):
        import ray
        self.connect()
        ns = request["namespace"]
        spec = request["spec"]
        for tries in range(40):
            queue = self._queue(ns, create=True)
            try:
                plan = ray.get(queue.enqueue.remote(request["indices"], int(request["parallel"])), timeout=60)
                if not plan.get("ending"):
                    break
            except ray.exceptions.RayActorError:
                pass
            # The queue is ending itself (idle) or ended between the lookup and the call: a new one is made.
            time.sleep(0.25)
        else:
            raise RuntimeError("the task's queue actor kept ending")
        options = {"num_cpus": spec.get("num_cpus") or 1}
        if spec.get("num_gpus"):
            options["num_gpus"] = spec["num_gpus"]
        for name in plan["create"]:
            self.worker_class.options(name=name, namespace=ns, lifetime="detached", **options).remote(ns, name, spec)
        return {"id": "ray-" + uuid.uuid4().hex[:8], "added": plan["added"], "workers": plan["create"]}

    def inflight(self, request):
        import ray
        self.connect()
        queue = self._queue(request["namespace"], create=False)
        if queue is None:
            return {"queued": [], "running": {}, "workers": {}}
        try:
            return ray.get(queue.snapshot.remote(), timeout=30)
        except ray.exceptions.RayActorError:
            return {"queued": [], "running": {}, "workers": {}}

    def nodes(self, request):
        import ray
        self.connect()
        wanted = set(request.get("nodes") or [])
        out = {}
        for n in ray.nodes():
            node = n.get("NodeID")
            if node not in wanted:
                continue
            if not n.get("Alive"):
                out[node] = "dead (%s)" % (n.get("DeathReasonMessage") or n.get("DeathReason") or "no reason given")
                continue
            # Alive for the GCS, which takes its time (≈ 15 s) to notice: a raylet that refuses connections is dead.
            addr, port = n.get("NodeManagerAddress"), n.get("NodeManagerPort")
            if addr and port:
                try:
                    socket.create_connection((addr, int(port)), timeout=2).close()
                except OSError as e:
                    out[node] = "its raylet at %s:%s does not answer (%s)" % (addr, port, e.strerror or e)
        return {"trouble": out}

    def cancel(self, request):
        import ray
        self.connect()
        ns = request["namespace"]
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a.get("namespace") == ns]
        queue = self._queue(ns, create=False)
        if queue is not None:
            try:
                ray.get(queue.close.remote(), timeout=10)
            except Exception:
                pass
        handles = {}
        for name in names:
            try:
                handles[name] = ray.get_actor(name, namespace=ns)
            except ValueError:
                pass
        stops = [h.stop.remote() for n, h in handles.items() if n != "queue"]
        if stops:
            ray.wait(stops, num_returns=len(stops), timeout=STOP_GRACE + 10)
        for h in handles.values():
            try:
                ray.kill(h, no_restart=True)
            except Exception:
                pass
        # Gone once Ray no longer knows their names.
        deadline = time.time() + 30
        while time.time() < deadline:
            left = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a.get("namespace") == ns]
            if not left:
                break
            time.sleep(0.25)
        return {"stopped": sorted(handles), "left": left if time.time() >= deadline else []}


def reachable(address):
    """A TCP connection to the GCS first: ray.init retries an address where nothing listens for a minute."""
    if address in ("", "auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except ValueError:
        raise RuntimeError("'%s' is not HOST:PORT" % address)
    except OSError as e:
        raise RuntimeError("connect to %s: %s" % (address, e.strerror or e))


class SetupError(Exception):
    """Ray is missing or broken in this Python (not a cluster that cannot be reached)."""


OPERATIONS = ("check", "submit", "inflight", "nodes", "cancel")


def answer(driver, request):
    op = request.get("op")
    if op not in OPERATIONS:
        return {"ok": False, "error": "unknown request %r" % op}
    try:
        result = getattr(driver, op)(request)
        result["ok"] = True
        return result
    except SetupError as e:
        return {"ok": False, "kind": "setup", "error": str(e)}
    except Exception as e:
        return {"ok": False, "error": str(e) if isinstance(e, RuntimeError) else "%s: %s" % (type(e).__name__, e)}


def serve(driver, out):
    """Requests on stdin, one JSON line each; answers on `out`. Ends when stdin closes or the parent dies."""
    parent = os.getppid()
    for line in sys.stdin:
        if os.getppid() != parent:
            break
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
        except ValueError as e:
            response = {"ok": False, "error": "bad request: %s" % e}
        else:
            response = answer(driver, request)
            response["seq"] = request.get("seq")
        out.write(json.dumps(response) + "\n")
        out.flush()


def main(argv):
    parser = argparse.ArgumentParser(prog="vslice_ray.py", description="vslice's Ray driver")
    parser.add_argument("command", choices=("version", "serve") + OPERATIONS)
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS", ""))
    parser.add_argument("--namespace")
    parser.add_argument("--node", action="append", default=[])
    args = parser.parse_args(argv)
    if args.command == "serve":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator's Ctrl-C is the coordinator's to handle
    # Answers go to the real stdout; anything Ray or a library prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if args.command == "version":
        out.write(json.dumps({"ok": True, "version": VERSION}) + "\n")
        return 0
    if args.command in ("check",):
        # A one-shot look: give up on a GCS that does not answer within seconds, not a minute.
        for key in ("RAY_gcs_rpc_server_reconnect_timeout_s", "RAY_gcs_server_request_timeout_seconds",
                    "RAY_gcs_rpc_server_connect_timeout_s"):
            os.environ.setdefault(key, "10")
    driver = Driver(args.address)
    if args.command == "serve":
        serve(driver, out)
        return 0
    if args.command == "submit":
        request = json.load(sys.stdin)
    else:
        request = {"namespace": args.namespace, "nodes": args.node}
    request["op"] = args.command
    response = answer(driver, request)
    out.write(json.dumps(response) + "\n")
    out.flush()
    return 0 if response.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
