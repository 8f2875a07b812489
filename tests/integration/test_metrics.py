"""Prometheus /metrics (monitord/metrics-http.h) scraped over HTTP from the
real suite and parsed with an independent parser (prometheus_client's):
counters move as CRI calls are made (a failing call counted with its code,
an image pull with its bytes and layers, a pod's run, containers'
create, start, exit and OOM kill, an ExecSync), a daemon that is down shows cric_daemon_up 0
without failing the scrape, and its restart is counted.

test_metrics_pod_life_cycle creates pods: run under `flock /tmp/cric-net.lock`."""
import re
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import api, started_suite, wait_for
from test_containers import Ctrs, ctrs, grpc_error, registry  # noqa: F401 (fixtures)


def parser_missing():
    try:
        import prometheus_client.parser  # noqa: F401
    except ImportError:
        return "python3-prometheus-client is not installed (deploy/install-deps)"
    return None


pytestmark = pytest.mark.skipif(parser_missing() is not None,
                                reason=f"the /metrics parser: {parser_missing()}")

DAEMONS = ["gateway", "imaged", "stored", "netd", "runtimed", "monitord"]


@pytest.fixture
def suite(suite_root, request):
    """The conftest suite, with /metrics on an ephemeral port (suites run
    side by side: the default port is one machine's)."""
    yield from started_suite(suite_root, request, {"monitord": {"metrics_port": 0}})


def url_of(suite):
    m = re.search(r"metrics on (http://\S+/metrics)", suite.log("monitord"))
    assert m, "monitord did not log its metrics address"
    return m.group(1)


def scrape(suite):
    """{(name, frozenset(labels.items())): value} of every sample, parsed by
    prometheus_client; and the families by name."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url_of(suite), timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples, families = {}, {}
    for fam in text_string_to_metric_families(text):
        assert fam.name not in families, f"family {fam.name} written twice"
        families[fam.name] = fam
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"sample {key} written twice"
            samples[key] = s.value
    return samples, families


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def test_metrics_scrape_counts_calls_and_codes(suite):
    samples, fams = scrape(suite)
    for d in DAEMONS:
        assert val(samples, "cric_daemon_up", daemon=d) == 1, d
        assert val(samples, "cric_process_resident_memory_bytes", daemon=d) > 1 << 20, d
        assert val(samples, "cric_process_open_fds", daemon=d) >= 3, d
        assert val(samples, "cric_process_start_time_seconds", daemon=d) > 1.6e9, d
    assert fams["cric_cri_request_duration_seconds"].type == "histogram"
    assert fams["cric_cri_requests"].type == "counter"  # the parser drops _total
    assert fams["cric_daemon_up"].type == "gauge"

    before_ok = val(samples, "cric_cri_requests_total", daemon="gateway", method="Version",
                    code="OK")
    before_n = val(samples, "cric_cri_request_duration_seconds_count", daemon="gateway",
                   method="Version")
    for _ in range(3):
        suite.cri.version()
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("ContainerStatus", api.ContainerStatusRequest(container_id="f" * 64),
                       api.ContainerStatusResponse)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        suite.cri.call("PullImage", api.PullImageRequest(image=api.ImageSpec(image="UPPER//x")),
                       api.PullImageResponse)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    samples, _ = scrape(suite)
    g = dict(daemon="gateway")
    assert val(samples, "cric_cri_requests_total", method="Version", code="OK", **g) \
        == before_ok + 3
    assert val(samples, "cric_cri_request_duration_seconds_count", method="Version", **g) \
        == before_n + 3
    inf = val(samples, "cric_cri_request_duration_seconds_bucket", method="Version", le="+Inf",
              **g)
    assert inf == before_n + 3
    assert val(samples, "cric_cri_request_duration_seconds_sum", method="Version", **g) > 0
    assert val(samples, "cric_cri_requests_total", method="ContainerStatus", code="NOT_FOUND",
               **g) == 1
    assert val(samples, "cric_cri_requests_total", method="PullImage", code="INVALID_ARGUMENT",
               **g) == 1
    assert val(samples, "cric_image_pulls_total", daemon="imaged", result="reference",
               code="INVALID_ARGUMENT") == 1
    assert val(samples, "cric_image_pull_duration_seconds_count", daemon="imaged",
               result="failed") == 1
    # Buckets are cumulative, le increasing.
    les = sorted((float(dict(k[1])["le"]), v) for k, v in samples.items()
                 if k[0] == "cric_cri_request_duration_seconds_bucket"
                 and dict(k[1]).get("method") == "Version")
    assert [v for _, v in les] == sorted(v for _, v in les)

    # Only GET (and HEAD) of /metrics.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url_of(suite).replace("/metrics", "/other"), timeout=10)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url_of(suite), data=b"x"), timeout=10)
    assert e.value.code == 405


def test_metrics_daemon_down_then_restarted(suite):
    samples, _ = scrape(suite)
    assert val(samples, "cric_daemon_up", daemon="netd") == 1
    assert val(samples, "cric_daemon_restarts_total", daemon="netd") == 0
    suite.kill("netd")
    samples, _ = scrape(suite)  # succeeds without netd
    assert val(samples, "cric_daemon_up", daemon="netd") == 0
    assert ("cric_process_open_fds", frozenset({"daemon": "netd"}.items())) not in samples
    assert val(samples, "cric_daemon_up", daemon="runtimed") == 1
    suite.up()
    wait_for(lambda: val(scrape(suite)[0], "cric_daemon_up", daemon="netd") == 1,
             what="netd back in /metrics")
    samples, _ = scrape(suite)
    assert val(samples, "cric_daemon_restarts_total", daemon="netd") == 1
    assert val(samples, "cric_daemon_restarts_total", daemon="stored") == 0


def test_metrics_pod_life_cycle(ctrs):
    s = ctrs.suite
    samples, _ = scrape(s)
    assert val(samples, "cric_image_pull_bytes_total", daemon="imaged") == 0
    ctrs.pull()
    pod_id, pod_cfg = ctrs.pod()
    cid = ctrs.create(pod_id, pod_cfg, ctrs.config(args=["exit 3"]))
    ctrs.cri.call("StartContainer", api.StartContainerRequest(container_id=cid),
                  api.StartContainerResponse)
    wait_for(lambda: ctrs.cri.call("ContainerStatus", api.ContainerStatusRequest(
        container_id=cid), api.ContainerStatusResponse).status.state == api.CONTAINER_EXITED,
        what="the container to exit")
    with pytest.raises(grpc.RpcError) as e:
        ctrs.cri.call("StartContainer", api.StartContainerRequest(container_id=cid),
                      api.StartContainerResponse)
    code = e.value.code().name
    hog = ctrs.create(pod_id, pod_cfg, ctrs.config(
        name="hog", resources=api.LinuxContainerResources(memory_limit_in_bytes=16 << 20),
        args=["x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]))
    ctrs.start(hog)
    assert ctrs.wait_exit(hog, timeout=30).reason == "OOMKilled"
    sleeper = ctrs.create(pod_id, pod_cfg, ctrs.config(name="sleeper", args=["sleep 60"]))
    ctrs.cri.call("StartContainer", api.StartContainerRequest(container_id=sleeper),
                  api.StartContainerResponse)
    r = ctrs.cri.call("ExecSync", api.ExecSyncRequest(container_id=sleeper, cmd=["true"]),
                      api.ExecSyncResponse, timeout=30)
    assert r.exit_code == 0

    samples, _ = scrape(s)
    im = dict(daemon="imaged")
    assert val(samples, "cric_image_pulls_total", result="ok", code="OK", **im) == 1
    assert val(samples, "cric_image_pull_duration_seconds_count", result="ok", **im) == 1
    assert val(samples, "cric_image_pull_layers_total", source="registry", **im) >= 2
    assert val(samples, "cric_image_pull_bytes_total", **im) > 100_000
    rt = dict(daemon="runtimed")
    assert val(samples, "cric_pod_operations_total", operation="run", code="OK", **rt) == 1
    assert val(samples, "cric_pod_operation_duration_seconds_count", operation="run", **rt) == 1
    for op in ("create", "start"):
        assert val(samples, "cric_container_operations_total", operation=op, code="OK",
                   **rt) == 3, op
    assert val(samples, "cric_container_operations_total", operation="start", code=code,
               **rt) == 1
    assert val(samples, "cric_container_exits_total", reason="Error", **rt) == 1
    assert val(samples, "cric_container_exits_total", reason="OOMKilled", **rt) == 1
    assert val(samples, "cric_cri_requests_total", daemon="gateway", method="RunPodSandbox",
               code="OK") == 1
    assert val(samples, "cric_pods", state="ready", **rt) == 1
    assert val(samples, "cric_containers", state="exited", **rt) == 2
    assert val(samples, "cric_containers", state="running", **rt) == 1
    mo = dict(daemon="monitord")
    assert val(samples, "cric_exec_sessions_total", kind="exec_sync", code="OK", **mo) == 1
    assert val(samples, "cric_exec_sync_duration_seconds_count", **mo) == 1
