"""The CRI streaming list calls (cri-api v0.36, the kubelet's CRIListStreaming
gate): StreamPodSandboxes, StreamContainers, StreamContainerStats,
StreamPodSandboxStats, StreamPodSandboxMetrics and StreamImages, through the
real socket, against their List twins.

Many items cheaply and honestly: pods on the host's network (no netns, no
CNI: the same records and cgroups as any pod) and containers created but not
started (a real runc create each, through monitord). CI makes 60 pods (30
under ASan) with two containers each; CRIC_STREAM_SCALE=1 makes the issue's 1,000
pods and 2,000 containers (several minutes). Chunks are configured small so
that every stream has many messages.

Run under `flock /tmp/cric-net.lock` (creates pods)."""
import math
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import imageutil as iu
from conftest import BUILD, CRI, REPO, api, sanitized, skip_unless_ready, wait_for
from test_containers import Ctrs, registry  # noqa: F401 (fixture)
from test_pods import NODE, Pods

pytestmark = [skip_unless_ready(iu.missing, "images from a local registry")]

SCALE = os.environ.get("CRIC_STREAM_SCALE") == "1"
N_PODS = 1000 if SCALE else (30 if sanitized("runtimed") else 60)
CTRS_PER_POD = 2
ITEMS, BYTES = 7, 4096  # gateway.stream_items / stream_bytes for the tests

RUNTIME = "RuntimeService"


def restart_gateway(suite, **gw):
    suite.write_config({"gateway": gw})
    suite.kill("gateway")
    suite.up()


def stream(cri, method, req, resp_cls, service=RUNTIME, timeout=60):
    return cri._callable(service, method, resp_cls, stream=True)(req, timeout=timeout)


def streamed(cri, method, req, resp_cls, field, service=RUNTIME):
    """Every message of the stream: at least one item each, within the chunk
    limits (a message of one item may be bigger than the byte limit)."""
    msgs = list(stream(cri, method, req, resp_cls, service))
    for m in msgs:
        n = len(getattr(m, field))
        assert 1 <= n <= ITEMS, (method, n)
        assert n == 1 or m.ByteSize() <= BYTES, (method, n, m.ByteSize())
    items = [x for m in msgs for x in getattr(m, field)]
    assert len(msgs) >= math.ceil(len(items) / ITEMS)
    return msgs, items


def listed(cri, method, req, resp_cls, field, service=RUNTIME):
    return list(getattr(cri._callable(service, method, resp_cls)(req, timeout=60), field))


def key(item):
    for path in (("id",), ("attributes", "id"), ("pod_sandbox_id",)):
        x = item
        for p in path:
            if not hasattr(x, p):
                break
            x = getattr(x, p)
        else:
            return x
    raise AssertionError(f"no id in {type(item)}")


def same(cri, stream_method, stream_req, stream_resp, list_method, list_req, list_resp, field,
         list_field=None, whole=True, service=RUNTIME):
    """The stream and its List twin give the same items, each exactly once:
    byte for byte (whole), or by id (stats, which change between calls)."""
    msgs, got = streamed(cri, stream_method, stream_req, stream_resp, field, service)
    want = listed(cri, list_method, list_req, list_resp, list_field or field, service)
    ids = [key(x) for x in got]
    assert len(ids) == len(set(ids)), f"{stream_method}: an item sent twice"
    assert sorted(ids) == sorted(key(x) for x in want), stream_method
    if whole:
        assert sorted(x.SerializeToString(deterministic=True) for x in got) == \
            sorted(x.SerializeToString(deterministic=True) for x in want), stream_method
    return sorted(ids), len(msgs)


@pytest.fixture
def many(suite, registry):  # noqa: F811
    """N_PODS host-network pods (labels grp, mod) with CTRS_PER_POD created
    containers each (labels mod, n); the gateway chunks at ITEMS / BYTES."""
    restart_gateway(suite, stream_items=ITEMS, stream_bytes=BYTES)
    pods = Pods(suite, None)
    ctrs = Ctrs(suite, pods, registry)
    ctrs.pull()
    t0 = time.monotonic()

    def make_pod(i):
        cfg = pods.config(name=f"p{i}", network=NODE,
                          labels={"grp": "ab"[i % 2], "mod": str(i % 3)})
        cfg.log_directory = os.path.join(suite.root, "var/log/pods", f"p{i}")
        return pods.run(cfg), cfg

    def make_ctr(spec):
        (pod_id, cfg), n = spec
        return ctrs.create(pod_id, cfg, ctrs.config(
            name=f"c{n}", args=["true"], labels={"n": str(n)}),
            timeout=120)

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(make_pod, range(N_PODS)))
        cids = list(pool.map(make_ctr, [(p, n) for p in made for n in range(CTRS_PER_POD)]))
    print(f"{N_PODS} pods, {len(cids)} containers made in {time.monotonic() - t0:.1f} s")
    yield ctrs, [p for p, _ in made], cids
    t0 = time.monotonic()

    def remove(pod_id):
        pods.stop(pod_id)
        pods.remove(pod_id)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(remove, [p for p, _ in made]))
    errors = pods.cleanup()
    print(f"removed in {time.monotonic() - t0:.1f} s")
    assert not errors, errors


def test_streams_give_what_lists_give_in_many_messages(suite, many):
    ctrs, pod_ids, cids = many
    cri = suite.cri
    t0 = time.monotonic()

    def pods(**f):
        flt = api.PodSandboxFilter(**f) if f else None
        return same(cri, "StreamPodSandboxes", api.StreamPodSandboxesRequest(filter=flt),
                    api.StreamPodSandboxesResponse, "ListPodSandbox",
                    api.ListPodSandboxRequest(filter=flt), api.ListPodSandboxResponse,
                    "pod_sandboxes", "items")[0]

    ids, n_msgs = same(cri, "StreamPodSandboxes", api.StreamPodSandboxesRequest(),
                       api.StreamPodSandboxesResponse, "ListPodSandbox",
                       api.ListPodSandboxRequest(), api.ListPodSandboxResponse,
                       "pod_sandboxes", "items")
    assert ids == sorted(pod_ids)
    assert n_msgs >= N_PODS / ITEMS
    assert pods(id=pod_ids[5]) == [pod_ids[5]]
    assert pods(id=pod_ids[5][:13]) == [pod_ids[5]]
    assert pods(id="f" * 64) == []
    assert pods(label_selector={"grp": "a", "mod": "1"}) == \
        sorted(p for i, p in enumerate(pod_ids) if i % 2 == 0 and i % 3 == 1)
    ctrs.pods.stop(pod_ids[0])
    assert pods(state=api.PodSandboxStateValue(state=api.SANDBOX_NOTREADY)) == [pod_ids[0]]
    assert len(pods(state=api.PodSandboxStateValue(state=api.SANDBOX_READY))) == N_PODS - 1

    def containers(**f):
        flt = api.ContainerFilter(**f) if f else None
        return same(cri, "StreamContainers", api.StreamContainersRequest(filter=flt),
                    api.StreamContainersResponse, "ListContainers",
                    api.ListContainersRequest(filter=flt), api.ListContainersResponse,
                    "containers")[0]

    assert containers() == sorted(cids)
    assert len(containers(pod_sandbox_id=pod_ids[7])) == CTRS_PER_POD
    assert containers(id=cids[9][:12]) == [cids[9]]
    assert len(containers(label_selector={"n": "1"})) == N_PODS
    assert len(containers(state=api.ContainerStateValue(state=api.CONTAINER_CREATED))) \
        == len(cids) - CTRS_PER_POD  # pod 0's were stopped with it
    assert containers(state=api.ContainerStateValue(state=api.CONTAINER_RUNNING)) == []

    def ctr_stats(**f):
        flt = api.ContainerStatsFilter(**f) if f else None
        return same(cri, "StreamContainerStats", api.StreamContainerStatsRequest(filter=flt),
                    api.StreamContainerStatsResponse, "ListContainerStats",
                    api.ListContainerStatsRequest(filter=flt), api.ListContainerStatsResponse,
                    "container_stats", "stats", whole=False)[0]

    assert ctr_stats() == sorted(cids)
    assert len(ctr_stats(pod_sandbox_id=pod_ids[3])) == CTRS_PER_POD
    assert len(ctr_stats(label_selector={"n": "0"})) == N_PODS

    def pod_stats(**f):
        flt = api.PodSandboxStatsFilter(**f) if f else None
        return same(cri, "StreamPodSandboxStats", api.StreamPodSandboxStatsRequest(filter=flt),
                    api.StreamPodSandboxStatsResponse, "ListPodSandboxStats",
                    api.ListPodSandboxStatsRequest(filter=flt), api.ListPodSandboxStatsResponse,
                    "pod_sandbox_stats", "stats", whole=False)[0]

    ready = sorted(pod_ids[1:])
    assert pod_stats() == ready
    assert pod_stats(id=pod_ids[4]) == [pod_ids[4]]
    assert pod_stats(label_selector={"grp": "b"}) == \
        sorted(p for i, p in enumerate(pod_ids) if i % 2 == 1)
    metrics = same(cri, "StreamPodSandboxMetrics", api.StreamPodSandboxMetricsRequest(),
                   api.StreamPodSandboxMetricsResponse, "ListPodSandboxMetrics",
                   api.ListPodSandboxMetricsRequest(), api.ListPodSandboxMetricsResponse,
                   "pod_sandbox_metrics", "pod_metrics", whole=False)[0]
    assert metrics == ready
    print(f"every stream checked in {time.monotonic() - t0:.1f} s")


def test_stream_images_and_errors(suite, registry):  # noqa: F811
    restart_gateway(suite, stream_items=1, stream_bytes=BYTES)
    cri = suite.cri
    # Nothing yet: no message, then OK.
    for method, req, resp in [
            ("StreamPodSandboxes", api.StreamPodSandboxesRequest(), api.StreamPodSandboxesResponse),
            ("StreamContainers", api.StreamContainersRequest(), api.StreamContainersResponse),
            ("StreamContainerStats", api.StreamContainerStatsRequest(),
             api.StreamContainerStatsResponse),
            ("StreamPodSandboxStats", api.StreamPodSandboxStatsRequest(),
             api.StreamPodSandboxStatsResponse),
            ("StreamPodSandboxMetrics", api.StreamPodSandboxMetricsRequest(),
             api.StreamPodSandboxMetricsResponse)]:
        assert list(stream(cri, method, req, resp)) == [], method
    assert list(stream(cri, "StreamImages", api.StreamImagesRequest(), api.StreamImagesResponse,
                       "ImageService")) == []
    ctrs = Ctrs(suite, None, registry)
    refs = {ctrs.pull("test/ctr:1"), ctrs.pull("test/user:1")}
    ids, n = same(cri, "StreamImages", api.StreamImagesRequest(), api.StreamImagesResponse,
                  "ListImages", api.ListImagesRequest(), api.ListImagesResponse, "images",
                  service="ImageService")
    assert set(ids) == refs and n == 2  # stream_items 1: one image a message
    flt = api.ImageFilter(image=api.ImageSpec(image=ctrs.image("test/user:1")))
    ids, n = same(cri, "StreamImages", api.StreamImagesRequest(filter=flt),
                  api.StreamImagesResponse, "ListImages", api.ListImagesRequest(filter=flt),
                  api.ListImagesResponse, "images", service="ImageService")
    assert len(ids) == 1 and n == 1
    # Bad input: the List's error, or the gateway's for garbage.
    bad = api.ImageFilter(image=api.ImageSpec(image="UPPER/Case::bad"))
    with pytest.raises(grpc.RpcError) as e:
        cri.call("ListImages", api.ListImagesRequest(filter=bad))
    with pytest.raises(grpc.RpcError) as s:
        list(stream(cri, "StreamImages", api.StreamImagesRequest(filter=bad),
                    api.StreamImagesResponse, "ImageService"))
    assert s.value.code() == e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as s:
        list(stream(cri, "StreamContainers", b"\xff\xff\xff\xff\x0f", None))
    assert s.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The owner down: UNAVAILABLE, and back with it.
    suite.kill("imaged")
    with pytest.raises(grpc.RpcError) as s:
        list(stream(cri, "StreamImages", api.StreamImagesRequest(), api.StreamImagesResponse,
                    "ImageService"))
    assert s.value.code() == grpc.StatusCode.UNAVAILABLE
    suite.up()
    assert len(list(stream(cri, "StreamImages", api.StreamImagesRequest(),
                           api.StreamImagesResponse, "ImageService"))) == 2


BIG = 1024 * 1024  # a pod annotation: one pod a message
N_BIG = 24  # what grpc lets through to a client that does not read is ~6 MiB


def gone_after(suite, n_before):
    """The counts of messages the gateway had sent to the streams whose
    clients went away, after the first n_before such lines of its log."""
    lines = [ln for ln in suite.log("gateway").splitlines() if "StreamPodSandboxes" in ln
             and "client gone after" in ln]
    return [int(ln.split("client gone after ")[1].split()[0]) for ln in lines[n_before:]]


def test_stalled_and_vanished_clients_block_nothing(suite):
    """N_BIG pods of 1 MiB each (more than one 16 MiB message could hold): a
    client that takes one message and stops reading keeps its stream at the
    few messages grpc's flow control lets through; other calls, and a whole
    second stream, go on meanwhile; a client that cancels or dies ends its
    stream at once."""
    restart_gateway(suite, stream_bytes=BIG)
    pods = Pods(suite, None)
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda i: pods.run(network=NODE, annotations={"big": "x" * BIG}),
                                range(N_BIG)))
        print(f"{N_BIG} pods of 1 MiB made in {time.monotonic() - t0:.1f} s")
        cri = suite.cri
        req, resp = api.StreamPodSandboxesRequest(), api.StreamPodSandboxesResponse
        # Another channel: its own HTTP/2 connection and flow control.
        slow_cri = CRI(suite.socket)
        stalled = stream(slow_cri, "StreamPodSandboxes", req, resp, timeout=120)
        first = next(stalled)
        assert len(first.pod_sandboxes) == 1
        # Meanwhile: unary calls and a whole stream on the first channel.
        assert cri.version().runtime_name == "cric"
        t1 = time.monotonic()
        got = [p.id for m in stream(cri, "StreamPodSandboxes", req, resp) for p in m.pod_sandboxes]
        assert sorted(got) == sorted(ids)
        print(f"{N_BIG} MiB streamed beside the stalled client in {time.monotonic() - t1:.1f} s")
        stalled.cancel()
        slow_cri.close()
        wait_for(lambda: gone_after(suite, 0), what="the stalled stream to end")
        (n_sent,) = gone_after(suite, 0)
        assert n_sent < N_BIG // 2, f"the gateway pushed {n_sent} of {N_BIG} messages"
        print(f"the stalled client's stream had {n_sent} of {N_BIG} messages sent")

        # A client process that reads one message and dies.
        script = textwrap.dedent(f"""
            import os, sys
            sys.path.insert(0, {os.path.join(REPO, "tests/integration")!r})
            from conftest import CRI, api
            c = CRI({suite.socket!r})
            it = c.stream("StreamPodSandboxes", api.StreamPodSandboxesRequest(),
                          api.StreamPodSandboxesResponse, timeout=60)
            next(it)
            print("read", flush=True)
            os._exit(0)
        """)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, CRIC_BUILD=BUILD))
        assert r.returncode == 0 and r.stdout.strip() == "read", r.stderr
        wait_for(lambda: len(gone_after(suite, 1)) == 1, what="the dead client's stream to end")
        assert gone_after(suite, 1)[0] < N_BIG // 2
        assert cri.version().runtime_name == "cric"
    finally:
        errors = pods.cleanup()
    assert not errors, errors
