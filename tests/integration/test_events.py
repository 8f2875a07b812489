"""GetContainerEvents through the real gateway socket: runtimed publishes
the life of pods and containers (real pods, real runc), the gateway streams
it to every subscriber from one bounded buffer, cuts off a subscriber that
does not read, and closes every stream with an error when runtimed
restarts. Pods are made here: run under `flock /tmp/cric-net.lock`.
"""
import os
import threading

import grpc
import pytest

import imageutil as iu
from conftest import api, sanitized, skip_unless_ready, wait_for
from netutil import missing as net_missing
from test_containers import Ctrs, registry  # noqa: F401  (the registry fixture)
from test_pods import Pods

pytestmark = [skip_unless_ready(iu.missing, "images from a local registry"),
              skip_unless_ready(net_missing, "pods with real CNI networks")]

E = api.ContainerEventType
CREATED, STARTED, STOPPED, DELETED = (E.Value("CONTAINER_CREATED_EVENT"),
                                      E.Value("CONTAINER_STARTED_EVENT"),
                                      E.Value("CONTAINER_STOPPED_EVENT"),
                                      E.Value("CONTAINER_DELETED_EVENT"))


class Subscriber:
    """A GetContainerEvents stream read on its own thread (or not read at
    all: read=False), until it ends or the test is done."""

    def __init__(self, suite, read=True, timeout=120):
        self.channel = None
        if read:
            self.stream = suite.cri.stream("GetContainerEvents", api.GetEventsRequest(),
                                           api.ContainerEventResponse, timeout=timeout)
        else:
            # A client that reads nothing holds no more than its HTTP/2
            # window (grpc would otherwise grow it by its bandwidth probe).
            self.channel = grpc.insecure_channel(
                "unix://" + suite.socket,
                options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65536)])
            self.stream = self.channel.unary_stream(
                "/runtime.v1.RuntimeService/GetContainerEvents",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=api.ContainerEventResponse.FromString)(
                    api.GetEventsRequest(), timeout=timeout)
        self.events, self.error = [], None
        self.done = threading.Event()
        if read:
            threading.Thread(target=self.drain, daemon=True).start()

    def drain(self):
        try:
            for ev in self.stream:
                self.events.append(ev)
        except grpc.RpcError as e:
            self.error = e
        self.done.set()

    def of(self, pod_id):
        return [(e.container_event_type, e.container_id) for e in self.events
                if e.pod_sandbox_status.id == pod_id]

    def close(self):
        self.stream.cancel()
        self.done.wait(10)
        if self.channel:
            self.channel.close()


@pytest.fixture
def ctrs(suite, net, registry):  # noqa: F811
    p = Pods(suite, net)
    c = Ctrs(suite, p, registry)
    yield c
    errors = p.cleanup()
    assert not errors, errors


def life_cycle(ctrs, pod_annotations=None, cycles=1):
    """A pod with `cycles` containers made, started, stopped and removed in
    turn, then the pod stopped and removed; the events it must send."""
    ctrs.pull()
    pod, pcfg = ctrs.pod(annotations=pod_annotations)
    want = [(CREATED, pod), (STARTED, pod)]
    for i in range(cycles):
        cid = ctrs.create(pod, pcfg, ctrs.config(name=f"c{i}", command=["sleep", "600"]))
        ctrs.start(cid)
        ctrs.stop(cid)
        ctrs.remove(cid)
        want += [(CREATED, cid), (STARTED, cid), (STOPPED, cid), (DELETED, cid)]
    ctrs.pods.stop(pod)
    ctrs.pods.remove(pod)
    return pod, want + [(STOPPED, pod), (DELETED, pod)]


def test_life_cycle_in_order_for_two_subscribers_and_a_late_one(ctrs):
    a, b = Subscriber(ctrs.suite), Subscriber(ctrs.suite)
    pod, want = life_cycle(ctrs)
    wait_for(lambda: len(a.of(pod)) >= len(want) and len(b.of(pod)) >= len(want),
             what="both subscribers to see the whole life cycle")
    assert a.of(pod) == want and b.of(pod) == want
    evs = [e for e in a.events if e.pod_sandbox_status.id == pod]
    cid = want[2][1]
    states = {t: {c.id: c.state for c in e.containers_statuses}
              for e in evs for t in [(e.container_event_type, e.container_id)]}
    assert states[(STARTED, cid)] == {cid: api.CONTAINER_RUNNING}
    assert states[(STOPPED, cid)] == {cid: api.CONTAINER_EXITED}
    assert states[(DELETED, cid)] == {}
    assert evs[0].pod_sandbox_status.state == api.SANDBOX_READY
    assert evs[-1].pod_sandbox_status.metadata.uid.startswith("uid-")
    assert evs[-2].pod_sandbox_status.state == api.SANDBOX_NOTREADY
    stamps = [e.created_at for e in evs]
    assert stamps == sorted(stamps) and stamps[0] > 10**18  # nanoseconds
    # One that connects shortly after gets the recent events first.
    late = Subscriber(ctrs.suite)
    wait_for(lambda: len(late.of(pod)) >= len(want), what="the late subscriber's replay")
    assert late.of(pod) == want
    for s in (a, b, late):
        s.close()
        assert s.error.code() == grpc.StatusCode.CANCELLED


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_stuck_subscriber_is_cut_off_without_hurting_the_other(suite, ctrs):
    # A small buffer, events of 256 KiB (a pod annotation): a subscriber
    # that reads nothing fills grpc's flow-control window with the first
    # ones and falls more than 8 behind well before the end.
    suite.write_config({"gateway": {"events_buffer": 8}})
    suite.kill("gateway")
    suite.up()
    gw = suite.pid("gateway")
    stuck, fast = Subscriber(suite, read=False), Subscriber(suite)
    rss0 = rss_kib(gw)
    pod, want = life_cycle(ctrs, {"big": "x" * 256 * 1024}, cycles=3)
    wait_for(lambda: len(fast.of(pod)) >= len(want), what="the fast subscriber's events")
    assert fast.of(pod) == want and fast.error is None
    # The stuck one gets what was in flight, then RESOURCE_EXHAUSTED.
    stuck.drain()
    stuck.close()
    assert stuck.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, stuck.error
    assert "too slow" in stuck.error.details()
    assert len(stuck.of(pod)) < len(want)
    assert stuck.of(pod) == want[:len(stuck.of(pod))]
    if not sanitized("gateway"):
        # 18 events of 256 KiB went by; the gateway holds at most 8.
        assert rss_kib(gw) - rss0 < 8 * 1024, (rss0, rss_kib(gw))
    assert "too slow" in suite.log("gateway")
    fast.close()


def test_runtimed_restart_closes_every_stream_with_an_error(suite):
    a, b = Subscriber(suite), Subscriber(suite)
    suite.kill("runtimed")
    for s in (a, b):
        assert s.done.wait(30), "the stream stayed open after runtimed died"
        assert s.error.code() == grpc.StatusCode.UNAVAILABLE, s.error
        assert "relist" in s.error.details()
    suite.up()

    def subscribed():
        s = Subscriber(suite, read=False, timeout=2)
        try:
            next(s.stream)
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # open, nothing to say
        finally:
            s.channel.close()
        return True
    wait_for(subscribed, timeout=30, what="events to be served again")


BB = "/bin/busybox"


def pid_of(ctrs, cid):
    import json
    return json.loads(ctrs.status(cid, verbose=True).info["info"])["pid"]


def ctr_events(sub, cid):
    return [(t, c) for t, c in sub.of(sub.pod) if c == cid]


def test_exits_by_itself_or_killed_each_send_one_stopped(ctrs):
    # No status call after the exits: runtimed must see them itself.
    a, b = Subscriber(ctrs.suite), Subscriber(ctrs.suite)
    ctrs.pull()
    pod, pcfg = ctrs.pod()
    a.pod = b.pod = pod
    own = ctrs.create(pod, pcfg, ctrs.config(name="own", command=[BB, "sh", "-c", "exit 3"]))
    ctrs.start(own)
    killed = ctrs.create(pod, pcfg, ctrs.config(name="killed", command=[BB, "sleep", "600"]))
    ctrs.start(killed)
    os.kill(pid_of(ctrs, killed), 9)
    want = {c: [(CREATED, c), (STARTED, c), (STOPPED, c)] for c in (own, killed)}
    wait_for(lambda: all(ctr_events(s, c) == w for s in (a, b) for c, w in want.items()),
             timeout=20, what="a STOPPED event of each exit for both subscribers")
    for cid, code in ((own, 3), (killed, 137)):
        ev = next(e for e in a.events
                  if e.container_id == cid and e.container_event_type == STOPPED)
        st = {c.id: c for c in ev.containers_statuses}[cid]
        assert st.state == api.CONTAINER_EXITED and st.exit_code == code, st
    # A stop of what already exited sends nothing more: the DELETED
    # follows the one STOPPED.
    for cid in (own, killed):
        ctrs.stop(cid)
        ctrs.remove(cid)
    wait_for(lambda: all(len(ctr_events(s, c)) == 4 for s in (a, b) for c in want),
             what="the DELETED events")
    for s in (a, b):
        for c, w in want.items():
            assert ctr_events(s, c) == w + [(DELETED, c)]
        s.close()


def test_exit_while_runtimed_is_down_is_sent_after_its_restart(suite, ctrs):
    # The stream open across the restart is closed with an error (the
    # kubelet relists); the STOPPED of the exit runtimed did not see goes
    # out once it is back, to those who subscribe then.
    ctrs.pull()
    pod, pcfg = ctrs.pod()
    cid = ctrs.create(pod, pcfg, ctrs.config(name="dies", command=[BB, "sleep", "600"]))
    ctrs.start(cid)
    pid = pid_of(ctrs, cid)
    before = Subscriber(suite)
    before.pod = pod
    wait_for(lambda: (STARTED, cid) in ctr_events(before, cid), what="the STARTED event")
    suite.kill("runtimed")
    os.kill(pid, 9)
    assert before.done.wait(30), "the stream stayed open after runtimed died"
    assert before.error.code() == grpc.StatusCode.UNAVAILABLE, before.error
    assert (STOPPED, cid) not in ctr_events(before, cid)
    suite.up()
    subs = []

    def stopped_seen():
        # Refused (UNAVAILABLE) until the gateway follows runtimed again.
        if not subs or subs[-1].done.is_set():
            subs.append(Subscriber(suite))
            subs[-1].pod = pod
        return (STOPPED, cid) in ctr_events(subs[-1], cid)
    wait_for(stopped_seen, timeout=20, what="the STOPPED event after the restart")
    after = subs[-1]
    ev = next(e for e in after.events
              if e.container_id == cid and e.container_event_type == STOPPED)
    st = {c.id: c for c in ev.containers_statuses}[cid]
    assert st.state == api.CONTAINER_EXITED and st.exit_code == 137, st
    ctrs.stop(cid)
    ctrs.remove(cid)
    wait_for(lambda: (DELETED, cid) in ctr_events(after, cid), what="the DELETED event")
    assert ctr_events(after, cid).count((STOPPED, cid)) == 1
    after.close()


def test_pod_whose_infra_dies_sends_one_stopped(ctrs):
    s = Subscriber(ctrs.suite)
    pod, _ = ctrs.pod(pid=api.POD)
    s.pod = pod
    os.kill(ctrs.pods.info(pod)["pid"], 9)
    wait_for(lambda: (STOPPED, pod) in s.of(pod), timeout=20,
             what="the pod's STOPPED after its infra died")
    ev = next(e for e in s.events if e.container_id == pod and e.container_event_type == STOPPED)
    assert ev.pod_sandbox_status.state == api.SANDBOX_NOTREADY
    # The kubelet's stop and removal that follow send no second STOPPED.
    ctrs.pods.stop(pod)
    ctrs.pods.remove(pod)
    wait_for(lambda: (DELETED, pod) in s.of(pod), what="the pod's DELETED")
    assert s.of(pod) == [(CREATED, pod), (STARTED, pod), (STOPPED, pod), (DELETED, pod)]
    s.close()
