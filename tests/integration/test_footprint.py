"""What an idle daemon holds (issue 16's idle footprint), on the real suite.

Large libraries load at their first use, not at start: stored maps
libarchive (with libxml2, ICU, libstdc++ and the compression libraries
behind it) once it unpacks a layer, runtimed only for a checkpoint;
monitord maps libmicrohttpd (with GnuTLS behind it) once a client connects
to its streaming server or its /metrics. And calls made one at a time do not
make a daemon start a worker thread per call."""
import re
import urllib.request

import pytest

from conftest import api, started_suite
from test_containers import registry  # noqa: F401 (fixture)
from test_images import pull


@pytest.fixture
def suite(suite_root, request):
    """/metrics on an ephemeral port (suites run side by side)."""
    yield from started_suite(suite_root, request, {"monitord": {"metrics_port": 0}})


def maps(suite, daemon, prefix):
    """The files the daemon maps whose name starts with prefix."""
    with open(f"/proc/{suite.pid(daemon)}/maps") as f:
        return {line.split()[-1].rsplit("/", 1)[-1] for line in f
                if line.rstrip().rsplit("/", 1)[-1].startswith(prefix)}


def threads(suite, daemon):
    import os
    return len(os.listdir(f"/proc/{suite.pid(daemon)}/task"))


def test_large_libraries_load_at_first_use(suite, registry):  # noqa: F811
    for d in ("stored", "runtimed"):
        assert maps(suite, d, "libarchive.so") == set(), f"{d} maps libarchive at start"
    for lib in ("libmicrohttpd.so", "libgnutls.so"):
        assert maps(suite, "monitord", lib) == set(), f"monitord maps {lib} at start"

    # A pull unpacks layers: stored loads libarchive; runtimed has no use for it.
    pull(suite, f"{registry.host}/test/ctr:1")
    assert maps(suite, "stored", "libarchive.so") != set()
    assert maps(suite, "runtimed", "libarchive.so") == set()

    # The first scrape starts monitord's HTTP server, and it answers.
    m = re.search(r"metrics on (http://\S+/metrics)", suite.log("monitord"))
    assert m, "monitord did not log its metrics address"
    with urllib.request.urlopen(m.group(1), timeout=30) as r:
        assert r.status == 200
        assert b"cric_daemon_up" in r.read()
    assert maps(suite, "monitord", "libmicrohttpd.so") != set()


def test_calls_one_at_a_time_do_not_add_threads(suite):
    # Version and ListContainers go to runtimed, ImageFsInfo to stored.
    before = {d: threads(suite, d) for d in ("runtimed", "stored")}
    for _ in range(40):
        suite.cri.call("Version", api.VersionRequest(version="v1"), api.VersionResponse)
        suite.cri.call("ListContainers", api.ListContainersRequest(),
                       api.ListContainersResponse)
        suite.cri.call("ImageFsInfo", api.ImageFsInfoRequest(), api.ImageFsInfoResponse)
    for d, n in before.items():
        # At most one more worker: the one that waits while another serves.
        assert threads(suite, d) <= n + 1, f"{d}: {n} threads before, {threads(suite, d)} after"
